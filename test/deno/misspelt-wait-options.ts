// Calls that wait, given an options object with a key they do not know (a Deno user's `{ timeout }`,
// a misspelt `signal`), as one JSON line: each call's error code and whether its message names the
// options it does know. Each call is raced against 1 s: such a call waited for ever, the key ignored.
import { type Connection, Transport } from "sluice";

const gateway = await Transport.bind({ host: "127.0.0.1", gateway: true, log: null });
const node = await Transport.bind({ host: "127.0.0.1", log: null });
const [toGateway, toNode] = await Promise.all([node.connect(gateway.address, gateway.publicKey), gateway.accept()]) as [Connection, Connection];

const calls: Record<string, () => Promise<unknown>> = {
  accept: () => gateway.accept({ timeout: 50 } as never),
  recv: () => toNode.recv({ timeout: 50 } as never),
  acceptStream: () => toNode.acceptStream({ sigal: AbortSignal.timeout(50) } as never),
  flush: () => toNode.flush({ timeout: 50 } as never),
  connect: () => node.connect(gateway.address, gateway.publicKey, { sigal: AbortSignal.timeout(50) } as never),
  connectVia: () => node.connectVia(toGateway, gateway.publicKey.map((byte) => byte ^ 1), { deadlineMs: 50 } as never),
};
const answers: Record<string, string> = {};
for (const [name, call] of Object.entries(calls)) {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<string>((resolve) => (timer = setTimeout(resolve, 1000, "still waiting after 1 s")));
  answers[name] = await Promise.race([late, call().then(() => "resolved", (error: Error & { code?: string }) => {
    const namesSignal = /the options are [^.]*\bsignal\b/.test(error.message);
    const hint = /did you mean '(\w+)'/.exec(error.message)?.[1];
    return `${error.code}${namesSignal ? ", names signal" : ""}${hint === undefined ? "" : `, did you mean ${hint}`}`;
  })]);
  clearTimeout(timer);
}
await Promise.all([node.close(), gateway.close()]);
console.log(JSON.stringify(answers));
