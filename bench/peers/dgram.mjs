// Raw node:dgram, no reliability and no encryption: the platform's floor for 1200-byte datagrams.
//  - request/response: a 1 KiB datagram ping-pong;
//  - the "stream": a blast of 1200-byte datagrams, flow-controlled only so the receiver's socket
//    buffer does not overflow (at most WINDOW datagrams ahead of a cumulative count the receiver
//    sends back every CREDIT_EVERY datagrams). A lost datagram is not resent: after STALL_MS without
//    credit the sender counts what is missing as lost and goes on, and the receiver ends 4 × STALL_MS
//    after the last datagram. What arrives is what the row counts.
// Not used for connect times: there is no connection.
import { createSocket } from "node:dgram";

const HOST = "127.0.0.1";
const DATAGRAM_BYTES = 1200;
const WINDOW = 512;
const CREDIT_EVERY = 32;
const STALL_MS = 50;

async function bindSocket() {
  const socket = createSocket({ type: "udp4", recvBufferSize: 4 << 20 });
  await new Promise((resolve) => socket.bind(0, HOST, resolve));
  return socket;
}

/** One handler per socket at a time: the current connection's. */
function onMessages(socket) {
  let handler = null;
  socket.on("message", (message, from) => handler?.(message, from));
  return (next) => (handler = next);
}

export const dgram = {
  async listen() {
    const socket = await bindSocket();
    const listen = onMessages(socket);
    return {
      async expect() {
        const connection = {
          receiveStream(bytes, onChunk) {
            return new Promise((resolve) => {
              let received = 0;
              let count = 0;
              let lastAt = 0;
              // One watchdog, not a timer per datagram (that would add to the floor being measured).
              const watchdog = setInterval(() => count > 0 && performance.now() - lastAt > STALL_MS * 4 && end(), STALL_MS);
              const end = () => {
                clearInterval(watchdog);
                listen(null);
                resolve();
              };
              listen((message, from) => {
                onChunk(message);
                received += message.length;
                lastAt = performance.now();
                if (++count % CREDIT_EVERY === 0) {
                  const credit = Buffer.alloc(4);
                  credit.writeUInt32LE(count);
                  socket.send(credit, from.port, from.address);
                }
                if (received >= bytes) end();
              });
            });
          },
          echo() {
            listen((message, from) => socket.send(message, from.port, from.address));
          },
          close: async () => listen(null),
        };
        return { info: { port: socket.address().port }, accepted: Promise.resolve(connection) };
      },
      close: () => new Promise((resolve) => socket.close(resolve)),
    };
  },

  async dialer() {
    const socket = await bindSocket();
    const listen = onMessages(socket);
    return {
      async dial(info) {
        const send = (bytes) => socket.send(bytes, info.port, HOST);
        return {
          async sendStream(chunks) {
            let credited = 0;
            let wake = null;
            listen((message) => {
              credited = Math.max(credited, message.readUInt32LE(0));
              wake?.();
            });
            let sent = 0;
            for (const chunk of chunks) {
              for (let at = 0; at < chunk.length; at += DATAGRAM_BYTES) {
                while (sent - credited >= WINDOW) {
                  const stalled = await new Promise((resolve) => {
                    const timer = setTimeout(() => resolve(true), STALL_MS);
                    wake = () => {
                      clearTimeout(timer);
                      resolve(false);
                    };
                  });
                  if (stalled) credited = sent; // lost: not resent
                }
                send(chunk.subarray(at, at + DATAGRAM_BYTES));
                sent++;
              }
            }
            listen(null);
          },
          request(request) {
            return new Promise((resolve) => {
              listen(() => {
                listen(null);
                resolve();
              });
              send(request);
            });
          },
          close: async () => listen(null),
        };
      },
      close: () => new Promise((resolve) => socket.close(resolve)),
    };
  },
};
