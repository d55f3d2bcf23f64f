// A connect() whose sends the process may not make (--allow-net=127.0.0.1:0: it may bind port 0 on
// 127.0.0.1, and send nowhere): as one JSON line, the error's code, whether its message names the
// failed sends, and its cause's name. It waited its deadline and blamed the peer, the denied sends only
// logged and counted.
import { Transport } from "sluice";

const gateway = await Transport.bind({ host: "127.0.0.1", gateway: true, log: null });
const node = await Transport.bind({ host: "127.0.0.1", log: null });
try {
  await node.connect(gateway.address, gateway.publicKey, { deadlineMs: 600 });
  console.log(JSON.stringify({ connected: true }));
} catch (error) {
  const { code, message, cause } = error as Error & { code?: string };
  console.log(JSON.stringify({ code, namesSends: /sends failed; the last: /.test(message), cause: (cause as Error | undefined)?.name, sendErrors: node.stats().sendErrors > 0 }));
}
await Promise.all([node.close(), gateway.close()]);
