// Two transports in Deno: a handshake and messages both ways over loopback. Prints what happened as
// JSON. Run with --unstable-net to use Deno.listenDatagram, without it to use Deno's node:dgram.
import { Transport } from "sluice";

const gateway = await Transport.bind({ host: "127.0.0.1", gateway: true, log: null });
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
console.log(JSON.stringify({ socket, first, second, listenerErrors, keysMatch: toGateway.remotePublicKey.join() === gateway.publicKey.join(), handshakeUnder1s: handshakeMs < 1000 }));
