import { expect, test } from "vitest";
import { channel } from "sluice";

test("a packet goes through", async () => {
  const [tx, rx] = channel(4);
  expect(tx.trySend(new Uint8Array([7]))).toBe("sent");
  expect(await rx.recv()).toEqual(new Uint8Array([7]));
});
