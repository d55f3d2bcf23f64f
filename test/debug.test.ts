// The debug trace: NODE_DEBUG=sluice prints handshakes, losses and closes through util.debuglog (and
// nothing without it); the `debug` option takes the same lines anywhere (Deno too: test/deno.test.ts).
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { afterEach, expect, test } from "vitest";
import type { Transport } from "sluice";
import { mulberry32 } from "./support/random.ts";
import { caught } from "./support/errors.ts";
import { bindTest, closeAll, connectedPair, filteredSocket } from "./support/transports.ts";

const run = promisify(execFile);
const open: Transport[] = [];
afterEach(() => closeAll(...open.splice(0)));

test("NODE_DEBUG=sluice traces the connection's life to stderr; without it, nothing", async () => {
  const child = new URL("./children/debug-trace.mjs", import.meta.url).pathname;
  const env = { ...process.env };
  delete env.NODE_DEBUG;
  const traced = await run(process.execPath, [child], { env: { ...env, NODE_DEBUG: "net,sluice" }, timeout: 10_000 });
  const lines = traced.stderr.split("\n").filter((line) => line.startsWith("SLUICE "));
  expect(lines.some((line) => /^SLUICE \d+: transport bound to 127\.0\.0\.1:\d+ \(node:dgram\)$/.test(line))).toBe(true);
  expect(lines.filter((line) => /connection \d+ established with 127\.0\.0\.1:\d+ \((initiator|responder)/.test(line))).toHaveLength(2);
  expect(lines.some((line) => /handshake \d+ started: intros to 127\.0\.0\.1:\d+ every 200 ms, for at most 3000 ms$/.test(line))).toBe(true);
  expect(lines.filter((line) => /handshake \d+ completed with 127\.0\.0\.1:\d+ as (initiator|responder)$/.test(line))).toHaveLength(2);
  expect(lines.some((line) => /connection \d+ closing$/.test(line))).toBe(true);
  expect(lines.some((line) => /connection \d+ with 127\.0\.0\.1:\d+ ended: closed by the peer$/.test(line))).toBe(true);
  const quiet = await run(process.execPath, [child], { env, timeout: 10_000 });
  expect(quiet.stderr).toBe("");
});

test("the debug option: the same lines, losses among them, to a function of the application's", async () => {
  const lines: string[] = [];
  const random = mulberry32(77);
  const lossy = { on: true };
  const bind = (options: Parameters<typeof bindTest>[0]) => bindTest(options).then((transport) => (open.push(transport), transport));
  const { atJoiner, atGateway } = await connectedPair(bind, { debug: (line: string) => lines.push(`gateway: ${line}`) }, {
    debug: (line: string) => lines.push(`joiner: ${line}`),
    socket: filteredSocket((datagram) => !lossy.on || datagram[0] !== 0x02 || random() >= 0.1), // 10% of data packets lost (seeded)
  });
  for (let i = 0; i < 200; i++) await atJoiner.send(new Uint8Array(1000));
  for (let i = 0; i < 200; i++) await atGateway.recv();
  lossy.on = false; // the abort's one CLOSE is not retransmitted: were it lost, the gateway would end only at its dead-peer timeout
  atJoiner.abort("done");
  await atGateway.whenClosed;
  expect(lines.some((line) => /^joiner: connection \d+: (\d+ packets lost|\d+ tail-loss probes)/.test(line))).toBe(true);
  expect(lines.some((line) => /^joiner: connection \d+ aborted: the connection was aborted: done$/.test(line))).toBe(true);
  expect(lines.some((line) => /^gateway: connection \d+ with 127\.0\.0\.1:\d+ ended: closed by the peer$/.test(line))).toBe(true);
  expect(lines.some((line) => /^joiner: connection \d+ with 127\.0\.0\.1:\d+ ended: failed: ERR_SLUICE_ABORTED/.test(line))).toBe(true);
});

test("handshakes are traced: started, completed, refused and why, timed out, cancelled", async () => {
  const lines: string[] = [];
  const bind = (name: string, options: Parameters<typeof bindTest>[0] = {}) =>
    bindTest({ ...options, debug: (line: string) => lines.push(`${name}: ${line}`) }).then((transport) => (open.push(transport), transport));
  const gateway = await bind("gateway", { gateway: true });
  const plain = await bind("plain"); // not a gateway: it refuses a stranger's intros
  const joiner = await bind("joiner");
  await Promise.all([joiner.connect(gateway.address, gateway.publicKey), gateway.accept()]);
  await caught(() => joiner.connect(plain.address, plain.publicKey, { intervalMs: 50, deadlineMs: 200 }));
  const controller = new AbortController();
  const cancelled = joiner.connect({ host: "127.0.0.1", port: plain.address.port }, gateway.publicKey, { signal: controller.signal });
  controller.abort();
  await caught(() => cancelled);
  const expected = [
    /^joiner: handshake (\d+) started: intros to 127\.0\.0\.1:\d+ every 200 ms, for at most 3000 ms$/,
    /^gateway: handshake \d+ completed with 127\.0\.0\.1:\d+ as responder$/,
    /^joiner: handshake \d+ completed with 127\.0\.0\.1:\d+ as initiator$/,
    /^joiner: handshake \d+ started: intros to 127\.0\.0\.1:\d+ every 50 ms, for at most 200 ms$/,
    /^plain: handshake datagram (from 127\.0\.0\.1:\d+ )?refused: unknownSender$/, // from where when refused on arrival, not after its queue
    /^joiner: handshake \d+ failed: ERR_SLUICE_CONNECT_TIMEOUT \(connect to 127\.0\.0\.1:\d+ failed: no valid answer after \d+ intros/,
    /^joiner: handshake \d+ cancelled: its connect\(\) was aborted$/,
  ];
  for (const pattern of expected) expect(lines.some((line) => pattern.test(line)), `${pattern}\n${lines.join("\n")}`).toBe(true);
});
