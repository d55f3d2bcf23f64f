// The NAT type from what gateways observed: one view tells nothing unless it is our own address; the
// same port for two gateways is a cone; a port per gateway is symmetric.
import { expect, test } from "vitest";
import { NatObservations } from "../src/transport/nat-type.ts";

const local = { host: "0.0.0.0", port: 4000 };
const g1 = { host: "198.18.0.10", port: 7000 };
const g2 = { host: "198.18.0.11", port: 7000 };

test("no view, or one view elsewhere: unknown", () => {
  const views = new NatObservations();
  expect(views.natType(local)).toBe("unknown");
  views.record(g1, { host: "198.18.0.3", port: 30000 });
  expect(views.natType(local)).toBe("unknown");
});

test("two gateways see the same address: a cone; each a port of its own: symmetric", () => {
  const cone = new NatObservations();
  cone.record(g1, { host: "198.18.0.3", port: 30000 });
  cone.record(g2, { host: "198.18.0.3", port: 30000 });
  expect(cone.natType(local)).toBe("cone");
  const symmetric = new NatObservations();
  symmetric.record(g1, { host: "198.18.0.3", port: 30000 });
  symmetric.record(g2, { host: "198.18.0.3", port: 31000 });
  expect(symmetric.natType(local)).toBe("symmetric");
});

test("seen at its own address and port: open", () => {
  const views = new NatObservations();
  views.record(g1, { host: "127.0.0.1", port: 4000 });
  expect(views.natType({ host: "127.0.0.1", port: 4000 })).toBe("open");
});
