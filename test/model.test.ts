// Property tests (fast-check, fixed seeds): the channel against a model queue, and packet bytes
// across ring wrap-around with canaries on both sides of every copy.
import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { Arena, channel } from "sluice";

const SEED = 0x5_1c_e;
// A small arena with 1 KiB frames: packets up to 1016 bytes fill a frame exactly, and the pool is
// small enough that leaks would show.
const arena = Arena.create({ bytes: 8 * 1024 * 1024, frameBytes: 1024 });
const MAX_PACKET = arena.frameBytes - 8;

type Op =
  | { kind: "send"; size: number; fill: number }
  | { kind: "recv" }
  | { kind: "drain"; limit: number }
  | { kind: "closeSender" }
  | { kind: "closeReceiver" };

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant("send" as const), size: fc.integer({ min: 0, max: 40 }), fill: fc.integer({ min: 0, max: 255 }) }) },
  { weight: 4, arbitrary: fc.constant({ kind: "recv" as const }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("drain" as const), limit: fc.integer({ min: 1, max: 8 }) }) },
  { weight: 1, arbitrary: fc.constant({ kind: "closeSender" as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: "closeReceiver" as const }) },
);

function packetOf(size: number, fill: number): Uint8Array {
  return Uint8Array.from({ length: size }, (_, i) => (fill + i) & 255);
}

describe("channel ≡ model queue", () => {
  test("random trySend / tryRecv / drain / close from both ends, capacities 1..64", () => {
    arena.flushThreadCache();
    const before = arena.stats().freeFrames;
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 64 }), fc.array(op, { maxLength: 300 }), (capacity, ops) => {
        const [tx, rx] = channel(capacity, { arena, maxPacketSize: MAX_PACKET });
        const model: Uint8Array[] = [];
        let senderOpen = true;
        let receiverClosed = false;
        let ended = false;
        const recvModel = (): Uint8Array | "empty" | "closed" => {
          if (ended) return "closed";
          if (model.length > 0) return model.shift()!;
          if (!senderOpen || receiverClosed) {
            ended = true;
            return "closed";
          }
          return "empty";
        };
        for (const o of ops) {
          switch (o.kind) {
            case "send": {
              const packet = packetOf(o.size, o.fill);
              const expected = !senderOpen || receiverClosed ? "closed" : model.length >= capacity ? "full" : "sent";
              expect(tx.trySend(packet)).toBe(expected);
              if (expected === "sent") model.push(packet);
              break;
            }
            case "recv":
              expect(rx.tryRecv()).toEqual(recvModel());
              break;
            case "drain": {
              const got: Uint8Array[] = [];
              rx.drain((bytes, offset, length) => got.push(bytes.slice(offset, offset + length)), o.limit);
              expect(got).toEqual(ended ? [] : model.splice(0, o.limit));
              break;
            }
            case "closeSender":
              tx.close();
              senderOpen = false;
              break;
            case "closeReceiver":
              rx.close();
              receiverClosed = true;
              break;
          }
        }
        // Finish both ends; every frame must come back.
        tx.close();
        rx.close();
        while (rx.tryRecv() !== "closed");
      }),
      { seed: SEED, numRuns: 300 },
    );
    arena.flushThreadCache();
    expect(arena.stats().freeFrames).toBe(before); // exact: every frame of every channel came back
  });
});

describe("wrap-around", () => {
  test("random sizes 0..maxPacketSize around the ring many times, canaries intact on both sides", () => {
    const CANARY = 0xa5;
    const PAD = 16;
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 9 }),
        fc.array(fc.integer({ min: 0, max: MAX_PACKET }), { minLength: 50, maxLength: 200 }),
        fc.integer({ min: 0, max: 2 ** 31 - 1 }),
        (capacity, sizes, salt) => {
          const [tx, rx] = channel(capacity, { arena, maxPacketSize: MAX_PACKET });
          // Source: each packet is a view into a larger buffer with canaries on both sides.
          const source = new Uint8Array(MAX_PACKET + 2 * PAD);
          const target = new Uint8Array(MAX_PACKET + 2 * PAD);
          let next = 0;
          let received = 0;
          const check = (bytes: Uint8Array, offset: number, length: number): void => {
            // Plain checks, not expect(): a run makes ~20,000 copies, and expect() per byte cost most of the test's time.
            if (length !== sizes[received]) throw new Error(`packet ${received}: ${length} bytes, not ${sizes[received]}`);
            target.fill(CANARY);
            target.set(bytes.subarray(offset, offset + length), PAD);
            for (let i = 0; i < length; i++) if (target[PAD + i] !== ((salt + received * 31 + i) & 255)) throw new Error(`byte ${i} of packet ${received}`);
            for (let i = 0; i < PAD; i++) if (target[i] !== CANARY || target[PAD + length + i] !== CANARY) throw new Error(`a canary around packet ${received} was overwritten`);
            received++;
          };
          while (received < sizes.length) {
            // Fill as far as the ring allows, then drain a random-ish part of it.
            while (next < sizes.length) {
              const size = sizes[next]!;
              source.fill(CANARY);
              for (let i = 0; i < size; i++) source[PAD + i] = (salt + next * 31 + i) & 255;
              const view = source.subarray(PAD, PAD + size);
              if (tx.trySend(view) !== "sent") break;
              for (let i = 0; i < PAD; i++) if (source[i] !== CANARY || source[PAD + size + i] !== CANARY) throw new Error(`a canary around packet ${next}'s source was overwritten`);
              next++;
            }
            rx.drain(check, 1 + (salt % capacity));
          }
          tx.close();
          expect(rx.tryRecv()).toBe("closed");
        },
      ),
      { seed: SEED, numRuns: 100 },
    );
  });
});
