// A gateway introduces two peers, which then talk to each other directly.
//   node examples/gateway-and-peers.mjs
// A peer that is not a gateway answers only the peers it is itself connecting to, so two peers meet
// by both calling connect() at about the same time. The gateway tells each one where the other is
// (the address it saw, which is the peer's address on the internet when NATs sit in between) and
// the other's public key. All three run in this process, on loopback.
import { Transport } from "sluice";

const text = (bytes) => new TextDecoder().decode(bytes);
const bytes = (value) => new TextEncoder().encode(typeof value === "string" ? value : JSON.stringify(value));

const gateway = await Transport.bind({ host: "127.0.0.1", gateway: true });
const alice = await Transport.bind({ host: "127.0.0.1" });
const bob = await Transport.bind({ host: "127.0.0.1" });

// The gateway: waits for two peers, then sends each the other's address and key.
const introduced = (async () => {
  const [first, second] = [await gateway.accept(), await gateway.accept()];
  const about = (connection) => ({ address: connection.remoteAddress, publicKey: Buffer.from(connection.remotePublicKey).toString("hex") });
  await Promise.all([first.send(bytes(about(second))), second.send(bytes(about(first)))]);
  return [first, second];
})();

// Each peer: connect to the gateway, learn about the other, then connect to it.
async function meet(self, name) {
  const toGateway = await self.connect(gateway.address, gateway.publicKey);
  const other = JSON.parse(text(await toGateway.recv()));
  console.log(`${name}: the gateway says the other peer is ${other.address.host}:${other.address.port}`);
  const direct = await self.connect(other.address, Buffer.from(other.publicKey, "hex"));
  return { toGateway, direct };
}
const [a, b] = await Promise.all([meet(alice, "alice"), meet(bob, "bob")]);

await a.direct.send(bytes("hello bob, from alice"));
console.log(`bob got: ${text(await b.direct.recv())}`);
await b.direct.send(bytes("hi alice, bob here"));
console.log(`alice got: ${text(await a.direct.recv())}`);
console.log(`the gateway holds ${gateway.stats().connections} connections and carried none of those messages`);

await Promise.all([a.direct.close(), a.toGateway.close(), b.toGateway.close()]);
await introduced;
await Promise.all([alice.close(), bob.close(), gateway.close()]);
