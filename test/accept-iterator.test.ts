// `for await (const connection of transport)`: a server's accept loop, as it writes one for messages.
import { describe, expect, it } from "vitest";
import { transportsPerTest } from "./support/transports.ts";

const bind = transportsPerTest();

describe("for await over a transport's inbound connections", () => {
  it("yields each accepted connection and ends when the transport closes", async () => {
    const gateway = await bind({ gateway: true, acceptRamp: [] });
    const [a, b] = await Promise.all([bind(), bind()]);
    const seen: string[] = [];
    const loop = (async () => {
      for await (const connection of gateway) seen.push(Buffer.from(connection.remotePublicKey).toString("hex"));
    })();
    await a.connect(gateway.address, gateway.publicKey);
    await b.connect(gateway.address, gateway.publicKey);
    await expect.poll(() => seen.length).toBe(2);
    await gateway.close();
    await loop;
    expect(seen.sort()).toEqual([a.publicKey, b.publicKey].map((key) => Buffer.from(key).toString("hex")).sort());
  });

  it("break ends a waiting loop at once, and the next connection stays for accept()", async () => {
    const gateway = await bind({ gateway: true, acceptRamp: [] });
    const iterator = gateway[Symbol.asyncIterator]();
    const waiting = iterator.next();
    await iterator.return();
    expect(await waiting).toEqual({ done: true, value: undefined });
    const peer = await bind();
    await peer.connect(gateway.address, gateway.publicKey);
    const accepted = await gateway.accept({ signal: AbortSignal.timeout(2000) });
    expect(accepted?.remotePublicKey).toEqual(peer.publicKey);
  });
});
