// node-datachannel (libdatachannel, native C++): a WebRTC data channel, SCTP over DTLS 1.2, over ICE
// with host candidates on 127.0.0.1 only (no STUN or TURN server; candidates for any other address
// are never forwarded). Offer, answer and candidates travel through the parent's relay, as a
// signalling server would carry them, so connect times include that relay (two IPC hops each way).
import ndc from "node-datachannel";
import { connectionOver } from "./connection.mjs";

/**
 * libdatachannel's `mtu` is the IP packet it plans for, assuming IPv6 (40 B) and UDP (8 B) headers;
 * its default, 1280, gives datagrams above 1200 B. 1248 keeps them within Sluice's 1200 (seen on the
 * wire: ≤ 1189 B).
 */
const DATACHANNEL_MTU = 1248;
const CONFIG = { iceServers: [], bindAddress: "127.0.0.1", mtu: DATACHANNEL_MTU };
/** Send-buffer bounds for the transfer: wait above HIGH until libdatachannel reports LOW. */
const HIGH_BYTES = 1024 * 1024;
const LOW_BYTES = 256 * 1024;
const LOOPBACK_CANDIDATE = / 127\.0\.0\.1 /;

/**
 * Wires `peer`'s signalling to the mailbox: descriptions, and trickled candidates (loopback ones
 * only). The offerer holds its candidates back until it has the answer. Measured without that
 * (2-core VM, 20 connects): ~5 ms, ~55 ms or ~1 s each, about half at ~1 s, because the answerer's
 * ICE could complete and its DTLS ClientHello arrive before the offerer had the answer to
 * set up DTLS with, and the lost flight waits out OpenSSL's 1 s timer. Sending complete descriptions
 * (no trickle) measured worse.
 */
function signal(peer, mailbox, { offerer }) {
  let held = offerer ? [] : undefined;
  const sendCandidate = (message) => (held ? held.push(message) : mailbox.send(message));
  peer.onLocalDescription((sdp, type) => mailbox.send({ kind: "webrtc", sdp, type }));
  peer.onLocalCandidate((candidate, mid) => {
    if (LOOPBACK_CANDIDATE.test(candidate)) sendCandidate({ kind: "webrtc", candidate, mid });
  });
  mailbox.on("webrtc", (message) => {
    if (message.sdp === undefined) return peer.addRemoteCandidate(message.candidate, message.mid);
    peer.setRemoteDescription(message.sdp, message.type);
    for (const candidate of held?.splice(0) ?? []) mailbox.send(candidate);
    held = undefined;
  });
}

function channelConnection(channel, peer) {
  let wake = null;
  channel.setBufferedAmountLowThreshold(LOW_BYTES);
  channel.onBufferedAmountLow(() => wake?.());
  return connectionOver({
    send: (data) => channel.sendMessageBinary(data),
    subscribe: (handler) => channel.onMessage(handler),
    async sendStream(chunks) {
      for (const chunk of chunks) {
        channel.sendMessageBinary(chunk);
        while (channel.bufferedAmount() > HIGH_BYTES) {
          await new Promise((resolve) => {
            wake = resolve;
            if (channel.bufferedAmount() <= LOW_BYTES) resolve();
          });
        }
      }
    },
    async close() {
      channel.close();
      peer.close();
    },
  });
}

export const datachannel = {
  async listen() {
    const peers = new Set();
    return {
      async expect(mailbox) {
        const peer = new ndc.PeerConnection("listener", CONFIG);
        peers.add(peer);
        signal(peer, mailbox, { offerer: false });
        const accepted = new Promise((resolve) => peer.onDataChannel((channel) => resolve(channelConnection(channel, peer))));
        return { info: {}, accepted };
      },
      async close() {
        for (const peer of peers) peer.close();
      },
    };
  },

  async dialer() {
    // The first peer connection is made before the clock starts (a connect sample times from dial()).
    let prepared = new ndc.PeerConnection("dialer", CONFIG);
    const peers = [];
    return {
      async dial(info, mailbox) {
        const peer = prepared ?? new ndc.PeerConnection("dialer", CONFIG);
        prepared = undefined;
        peers.push(peer);
        signal(peer, mailbox, { offerer: true });
        const channel = peer.createDataChannel("bench");
        await new Promise((resolve) => channel.onOpen(resolve));
        return channelConnection(channel, peer);
      },
      async close() {
        for (const peer of [...peers, prepared]) peer?.close();
      },
    };
  },

  shutdown: () => ndc.cleanup(),
};
