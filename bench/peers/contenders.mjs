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
import { once } from "node:events";

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

/**
 * The parts every Connection shares, given how it sends one buffer (`send`), how what arrives reaches
 * it (`subscribe` installs the one data handler), its transfer (`sendStream`) and its teardown.
 */
export function connectionOver({ send, subscribe, sendStream, close, mtu }) {
  let onData = null;
  const listen = (handler) => (onData = handler);
  subscribe((data) => onData?.(data));
  return {
    mtu,
    sendStream,
    receiveStream: (bytes, onChunk) => receiveCounted(bytes, onChunk, listen),
    request: (request) => requestEcho(request, send, listen),
    echo: () => listen(send),
    async close() {
      listen(null);
      await close();
    },
  };
}

/**
 * A Connection over a Node-style duplex (streamx: write() answers false when its buffer is full,
 * then 'drain'; 'data' hands what arrived). `destroy` tears down the duplex and what is under it.
 */
export function duplexConnection(duplex, destroy, mtu) {
  duplex.on("error", () => {}); // a peer closing first is not an error of the benchmark
  return connectionOver({
    send: (data) => duplex.write(data),
    subscribe: (handler) => duplex.on("data", handler),
    async sendStream(chunks) {
      for (const chunk of chunks) if (!duplex.write(chunk)) await once(duplex, "drain");
      duplex.end();
    },
    close: destroy,
    mtu,
  });
}

/** Resolves once `bytes` have arrived through the handler `listen` installs, each chunk passed to `onChunk`. */
function receiveCounted(bytes, onChunk, listen) {
  return new Promise((resolve) => {
    let received = 0;
    listen((data) => {
      onChunk(data);
      received += data.length;
      if (received >= bytes) {
        listen(null);
        resolve();
      }
    });
  });
}

/** Sends `request` and resolves once as many bytes came back (a reply may arrive in pieces). */
function requestEcho(request, send, listen) {
  return new Promise((resolve) => {
    let received = 0;
    listen((data) => {
      received += data.length;
      if (received >= request.length) {
        listen(null);
        resolve();
      }
    });
    send(request);
  });
}
