// WHATWG streams over a connection's Session, for Node and Deno alike. An outgoing stream is a
// WritableStream whose writes wait for room in the send buffer; an incoming one is a ReadableStream
// with a high-water mark of 0, so nothing is read ahead of its reader and the credit the peer gets
// follows the reader's pace.
import { validateBytes } from "../errors/validate.ts";
import { ownedCopy } from "../memory/owned-copy.ts";
import type { SessionDriver } from "./session-driver.ts";

/** Outgoing stream `id` (opened on the driver's Session) as a WritableStream. */
export function writableStream(driver: SessionDriver, id: number): WritableStream<Uint8Array> {
  const session = driver.session;
  const refusal = (): Error | undefined => {
    const state = session.streamState(id);
    return typeof state === "object" ? new Error(state.reset) : driver.writeRefusal();
  };
  return new WritableStream<Uint8Array>({
    write: async (chunk) => {
      validateBytes(chunk, "chunk");
      await driver.until(() => session.writable && refusal() === undefined, refusal);
      session.writeStream(id, ownedCopy(chunk, 0, chunk.length), driver.now());
      driver.scheduleDrive();
    },
    close: async () => {
      const refused = refusal();
      if (refused !== undefined) throw refused;
      session.finishStream(id);
      driver.scheduleDrive();
      await driver.until(() => session.streamState(id) === "delivered", () => refusal() ?? (driver.ended ? new Error("the connection closed before the stream was delivered") : undefined));
    },
    abort: () => {
      session.resetStream(id, `stream ${id} was aborted by its writer`);
      driver.scheduleDrive();
    },
  });
}

/** Incoming stream `id` (accepted from the driver's Session) as a ReadableStream. */
export function readableStream(driver: SessionDriver, id: number): ReadableStream<Uint8Array> {
  const session = driver.session;
  return new ReadableStream<Uint8Array>({
    pull: async (controller) => {
      for (;;) {
        let piece: Uint8Array | null | undefined;
        try {
          piece = session.readStream(id);
        } catch (error) {
          controller.error(error);
          return;
        }
        if (piece === null) return controller.close();
        if (piece !== undefined) {
          controller.enqueue(piece);
          driver.scheduleDrive(); // reading may have raised the peer's credit
          return;
        }
        if (driver.ended && session.state === "closed") {
          controller.error(session.error ?? new Error(`stream ${id} ended early: the connection closed before its end`));
          return;
        }
        await driver.changed();
      }
    },
    cancel: () => {
      session.cancelStream(id);
      driver.scheduleDrive();
    },
  }, { highWaterMark: 0 });
}
