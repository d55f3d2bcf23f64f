// Frozen defaults, and host names resolved once by bind(). (The public members of Transport and
// Connection are held to a list in test/hygiene.test.ts, which has the compiler's view at hand.)
import { afterEach, expect, test } from "vitest";
import { DEFAULT_ACCEPT_RAMP, DEFAULT_RELIABILITY, DEFAULT_RETRY, type Transport } from "sluice";
import { closeAll, connectedPair, publicBinder } from "./support/transports.ts";

const open: Transport[] = [];
afterEach(() => closeAll(...open.splice(0)));
const bind = publicBinder(open);

test("the defaults are frozen: DEFAULT_RELIABILITY, DEFAULT_RETRY, DEFAULT_ACCEPT_RAMP and its steps", () => {
  expect(Object.isFrozen(DEFAULT_RELIABILITY)).toBe(true);
  expect(Object.isFrozen(DEFAULT_RETRY)).toBe(true);
  expect(Object.isFrozen(DEFAULT_ACCEPT_RAMP)).toBe(true);
  expect(DEFAULT_ACCEPT_RAMP.every((step) => Object.isFrozen(step))).toBe(true);
  expect("streamInactivityMs" in DEFAULT_RELIABILITY).toBe(false); // streams live as long as their connection
});

test("bind() takes a host name and resolves it once, as node:dgram does", async () => {
  const { gateway, joiner, atJoiner, atGateway } = await connectedPair(bind, { host: "localhost" }, { host: "localhost" });
  expect(gateway.address.host).toBe("127.0.0.1");
  expect(joiner.address.host).toBe("127.0.0.1");
  await atJoiner.send(new Uint8Array([5]));
  expect(await atGateway.recv()).toEqual(new Uint8Array([5]));
});
