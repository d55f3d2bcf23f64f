// The contenders of the separate-process benchmark, each behind the same small interface so that
// bench/peers/child.mjs runs one test code for all of them:
//   peer = { listen(): Listener, dialer(): Dialer, shutdown?() }
//   Listener = { expect(mailbox) → { info, accepted: Promise<Connection> }, close() }
//   Dialer = { dial(info, mailbox) → Promise<Connection>, close() }    (one fresh socket per Dialer)
//   Connection = { sendStream(chunks), receiveStream(bytes, onChunk), request(bytes), echo(), close(), mtu?() }
// (`mtu`: udx's MTU its probing reached; sluice+pmtu's datagram size).
// `info` is what the dialer learns out of band (an address and key, a stream id); `mailbox` carries
// the rest of the signalling (WebRTC's offer, answer and candidates).
// Every socket binds 127.0.0.1; nothing here sends anywhere else.
export async function contender(name) {
  switch (name) {
    case "sluice": return (await import("./sluice.mjs")).sluice;
    case "sluice+pmtu": return (await import("./sluice.mjs")).sluiceDiscovering;
    case "udx": return (await import("./udx.mjs")).udx({ secret: false });
    case "udx+secret": return (await import("./udx.mjs")).udx({ secret: true });
    case "datachannel": return (await import("./datachannel.mjs")).datachannel;
    case "dgram": return (await import("./dgram.mjs")).dgram;
    default: throw new Error(`unknown contender ${name}`);
  }
}
