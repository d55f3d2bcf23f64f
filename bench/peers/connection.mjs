// The Connection of bench/peers/contenders.mjs's interface, built over what a contender gives: how it
// sends one buffer and hands what arrives (connectionOver), or a Node-style duplex (duplexConnection).
import { once } from "node:events";

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
