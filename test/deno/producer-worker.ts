// Deno Web Worker for smoke.ts: waits `delayMs` (so the receiver parks first), then sends `count`
// packets [u32 LE index] with send(), which sleeps whenever the channel is full.
import { Sender, type SenderHandle } from "sluice";

self.onmessage = async (event: MessageEvent<{ handle: SenderHandle; count: number; delayMs: number }>) => {
  const { handle, count, delayMs } = event.data;
  const sender = Sender.fromHandle(handle);
  await new Promise((resolve) => setTimeout(resolve, delayMs));
  const packet = new Uint8Array(4);
  const view = new DataView(packet.buffer);
  for (let i = 0; i < count; i++) {
    view.setUint32(0, i, true);
    await sender.send(packet);
  }
  sender.close();
};
