// A gateway introduces two peers, which then talk to each other directly.
//   node examples/gateway-and-peers.mjs
// A peer that is not a gateway answers only the peers it is itself connecting to, so two peers meet
// by both connecting at about the same time: Alice asks the gateway with connectVia(); the gateway
// tells each one where the other is (the address it sees, which is the peer's address on the
// internet when NATs sit in between) and the other's public key; both connect at once, and Bob gets
// the connection from accept(). All three run in this process, on loopback.
import { encodeKey, Transport } from "sluice";

const text = (bytes) => new TextDecoder().decode(bytes);
const bytes = (value) => new TextEncoder().encode(value);

const gateway = await Transport.bind({ host: "127.0.0.1", gateway: true }); // serves introductions by default
const alice = await Transport.bind({ host: "127.0.0.1" });
const bob = await Transport.bind({ host: "127.0.0.1" });

// Both connect to the gateway; keys travel as text (hex, or base64url).
const [aliceToGateway] = await Promise.all([alice.connect(gateway.address, gateway.publicKey), gateway.accept()]);
const [bobToGateway] = await Promise.all([bob.connect(gateway.address, encodeKey(gateway.publicKey, "base64url")), gateway.accept()]);
const bobsKey = encodeKey(bob.publicKey); // what Bob would tell Alice out of band

const [toBob, toAlice] = await Promise.all([alice.connectVia(aliceToGateway, bobsKey), bob.accept()]);
console.log(`alice: the gateway introduced bob, now at ${toBob.remoteAddress.host}:${toBob.remoteAddress.port} directly`);

await toBob.send(bytes("hello bob, from alice"));
console.log(`bob got: ${text(await toAlice.recv())}`);
await toAlice.send(bytes("hi alice, bob here"));
console.log(`alice got: ${text(await toBob.recv())}`);
console.log(`the gateway made ${gateway.stats().introductions.made} introduction and carried none of those messages`);

await Promise.all([toBob.close(), aliceToGateway.close(), bobToGateway.close()]);
await Promise.all([alice.close(), bob.close(), gateway.close()]);
