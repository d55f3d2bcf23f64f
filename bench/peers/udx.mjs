// udx-native (libudx: reliable streams, BBR, native C, no handshake, no encryption), raw or under
// @hyperswarm/secret-stream (a Noise XX handshake, then libsodium secretstream, XChaCha20-Poly1305,
// one tag per written message): what Hyperswarm runs.
//
// udx has no accept: a stream must know its remote stream id. Hyperswarm exchanges ids in its DHT
// handshake; here the listener picks an odd id, the dialer takes that id + 1 (the convention stands in
// for the out-of-band exchange), and the listener's stream connects back from its firewall hook when
// the dialer's first packet arrives. udx has no MTU option: it starts at 1200 and probes up to 1500
// (read back per connection: `mtu`).
import SecretStream from "@hyperswarm/secret-stream";
import UDX from "udx-native";
import { duplexConnection } from "./connection.mjs";

const HOST = "127.0.0.1";

function bindSocket(udx) {
  const socket = udx.createSocket();
  socket.bind(0, HOST);
  return socket;
}

function connection(raw, secret, isInitiator) {
  const duplex = secret ? new SecretStream(isInitiator, raw) : raw;
  const closed = new Promise((resolve) => raw.once("close", resolve));
  const destroy = () => {
    duplex.destroy();
    return closed;
  };
  return { duplex, value: duplexConnection(duplex, destroy, () => raw.mtu) };
}

export function udx({ secret }) {
  const udx = new UDX();
  return {
    async listen() {
      const socket = bindSocket(udx);
      let nextId = 1;
      return {
        async expect() {
          const id = nextId;
          nextId += 2;
          const raw = udx.createStream(id, {
            firewall(from, port, host) {
              raw.connect(from, id + 1, port, host);
              return false; // let the packet in
            },
          });
          return { info: { id, port: socket.address().port }, accepted: Promise.resolve(connection(raw, secret, false).value) };
        },
        close: () => socket.close(),
      };
    },

    async dialer() {
      const socket = bindSocket(udx);
      return {
        async dial(info) {
          const raw = udx.createStream(info.id + 1);
          raw.connect(socket, info.id, info.port, HOST);
          const { duplex, value } = connection(raw, secret, true);
          if (secret && !(await duplex.opened)) throw new Error("Noise handshake failed");
          return value;
        },
        close: () => socket.close(),
      };
    },
  };
}
