// Two transports in Deno: a handshake and messages both ways over loopback. Prints what happened as
// JSON. Run with --unstable-net to use Deno.listenDatagram, without it to use Deno's node:dgram.
import { encodeKey, publicKeyOf, Transport } from "sluice";

// The debug option traces in Deno as in Node (NODE_DEBUG is Node's way; Deno's node:util would ask for env access).
const traced: string[] = [];
const gateway = await Transport.bind({ host: "127.0.0.1", gateway: true, log: null, debug: (line) => traced.push(line) });
const joiner = await Transport.bind({ host: "127.0.0.1", log: null });
const started = performance.now();
const [toGateway, toJoiner] = await Promise.all([joiner.connect(gateway.address, gateway.publicKey), gateway.accept()]);
const handshakeMs = performance.now() - started;
await toGateway.send(new TextEncoder().encode("from deno"));
const first = new TextDecoder().decode(await toJoiner!.recv());
await toJoiner!.send(new TextEncoder().encode("and back"));
const second = new TextDecoder().decode(await toGateway.recv());
const { socket, listenerErrors } = gateway.stats();
await Promise.all([gateway.close(), joiner.close()]);
const identity = encodeKey(publicKeyOf(joiner.secretKey)) === encodeKey(joiner.publicKey);
const trace = traced.some((line) => /^connection \d+ established/.test(line)) && traced.some((line) => /ended/.test(line));
console.log(JSON.stringify({ socket, first, second, listenerErrors, keysMatch: toGateway.remotePublicKey.join() === gateway.publicKey.join(), handshakeUnder1s: handshakeMs < 1000, identity, trace }));
