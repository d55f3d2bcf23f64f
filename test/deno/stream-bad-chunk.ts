// A stream written a chunk that is not a Uint8Array (a string, as a Deno program piping text without
// TextEncoderStream does), as one JSON line: the write's error, what the reader then sees, and whether
// such streams give their slot back (1024 outgoing streams may be open at once, a reset one until the
// peer acknowledged its RESET).
import { type Connection, Transport } from "sluice";

const codeOf = (error: unknown) => (error as { code?: string }).code ?? String(error);
const gateway = await Transport.bind({ host: "127.0.0.1", gateway: true, log: null });
const node = await Transport.bind({ host: "127.0.0.1", log: null });
const [writing, reading] = await Promise.all([node.connect(gateway.address, gateway.publicKey), gateway.accept()]) as [Connection, Connection];

const writer = writing.openStream().getWriter();
await writer.write(new TextEncoder().encode("a first line\n"));
const writeError = await writer.write("a string\n" as unknown as Uint8Array).then(() => "accepted", codeOf);
const readable = await reading.acceptStream();
// The reader's end raced against 3 s: it waited until the connection ended.
let timer: ReturnType<typeof setTimeout> | undefined;
const late = new Promise<string>((resolve) => (timer = setTimeout(resolve, 3000, "still waiting after 3 s")));
const reader = await Promise.race([late, (async () => {
  try {
    const pieces = readable!.getReader();
    while (!(await pieces.read()).done);
    return "ended";
  } catch (error) {
    return codeOf(error);
  }
})()]);
clearTimeout(timer);

// Twice 600 such streams, which the peer accepts (each fails at once), given time between them to
// acknowledge the first 600 resets.
const accepting = (async () => {
  for (let stream = await reading.acceptStream(); stream !== undefined; stream = await reading.acceptStream()) {
    await stream.getReader().read().catch(() => {});
  }
})().catch(() => {});
let opened = 0;
let openError = "none";
try {
  for (; opened < 1200; opened++) {
    if (opened === 600) await new Promise((resolve) => setTimeout(resolve, 500));
    await writing.openStream().getWriter().write("x" as unknown as Uint8Array).catch(() => {});
  }
} catch (error) {
  openError = codeOf(error);
}
await Promise.all([node.close(), gateway.close(), accepting]);
console.log(JSON.stringify({ writeError, reader, opened, openError }));
