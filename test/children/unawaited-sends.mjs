// Child process for test/close.test.ts: eight send()s of 1 MiB nobody awaits (four fit the send
// buffer at once, four wait for room), then transport.close() (argv[2] "transport") or
// connection.close() ("connection"). It must exit 0 with nothing on stderr: an unhandled rejection
// would end it with code 1 and a stack there.
import { Transport } from "sluice";

const gateway = await Transport.bind({ host: "127.0.0.1", gateway: true, log: null });
const joiner = await Transport.bind({ host: "127.0.0.1", log: null });
const [connection] = await Promise.all([joiner.connect(gateway.address, gateway.publicKey), gateway.accept()]);
for (let i = 0; i < 8; i++) void connection.send(new Uint8Array(1 << 20));
if (process.argv[2] === "connection") void connection.close();
else void joiner.close();
setTimeout(() => {
  void joiner.close();
  void gateway.close();
}, 300);
