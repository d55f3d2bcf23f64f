// When send() reads the caller's bytes: at once when the message goes into the send buffer at the
// call, else when a waiting send's turn comes (so a buffer reused for un-awaited sends must wait).
import { describe, expect, it } from "vitest";
import { transportsPerTest } from "./support/transports.ts";

const bind = transportsPerTest();
const small = { reliability: { sendBufferBytes: 64 * 1024, messageWindowBytes: 64 * 1024 } };

describe("send() and the caller's bytes", () => {
  it("a send that resolves at once took its copy: changing the bytes afterwards changes nothing", async () => {
    const gateway = await bind({ gateway: true, acceptRamp: [] });
    const peer = await bind();
    const [connection, inbound] = await Promise.all([peer.connect(gateway.address, gateway.publicKey), gateway.accept()]);
    const bytes = new Uint8Array(100).fill(1);
    await connection.send(bytes);
    bytes.fill(2);
    expect((await inbound!.recv())![0]).toBe(1);
  });

  it("a send that waits reads the bytes when its turn comes: what they hold then is what goes", async () => {
    const gateway = await bind({ gateway: true, acceptRamp: [], ...small });
    const peer = await bind(small);
    const [connection, inbound] = await Promise.all([peer.connect(gateway.address, gateway.publicKey), gateway.accept()]);
    const sends: Promise<void>[] = [];
    let settled = 0;
    const bytes = new Uint8Array(1000);
    for (let i = 0; i < 400 && settled === sends.length; i++) {
      bytes.fill(1);
      const send = connection.send(bytes);
      void send.then(() => settled++);
      sends.push(send);
      await Promise.resolve();
      await Promise.resolve();
    }
    expect(settled).toBeLessThan(sends.length); // the last send waits: the peer is not reading
    bytes.fill(2);
    const received: number[] = [];
    for (let i = 0; i < sends.length; i++) received.push((await inbound!.recv({ signal: AbortSignal.timeout(5000) }))![0]!);
    await Promise.all(sends);
    expect(received.at(-1)).toBe(2);
    expect(received.slice(0, -1).every((first) => first === 1)).toBe(true);
  });
});
