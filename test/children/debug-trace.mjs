// Child process for test/debug.test.ts: a handshake, a message and a close, with NODE_DEBUG as the
// test sets it; the trace (util.debuglog) goes to stderr.
import { Transport } from "sluice";

const gateway = await Transport.bind({ host: "127.0.0.1", gateway: true, log: null });
const joiner = await Transport.bind({ host: "127.0.0.1", log: null });
const [connection, inbound] = await Promise.all([joiner.connect(gateway.address, gateway.publicKey), gateway.accept()]);
await connection.send(new Uint8Array([1]));
await inbound.recv();
await connection.close();
await Promise.all([joiner.close(), gateway.close()]);
