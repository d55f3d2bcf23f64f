// WHATWG streams over a connection's Session, for Node and Deno alike. An outgoing stream is a
// WritableStream whose writes wait for room in the send buffer, for the peer to admit the stream and
// for the stream's credit (so it is at most its reader's window and one write ahead), and whose
// close() resolves once the end is queued (the peer's acknowledgement is connection.flush()'s), so
// closing never waits on a reader that has not accepted the stream yet. An incoming one is a ReadableStream with a high-water
// mark of 0, so nothing is read ahead of its reader and the credit the peer gets follows the reader's
// pace; cancelling it tells the writer to stop (STOP_SENDING).
import { SluiceError } from "../errors/errors.ts";
import { validateBytes } from "../errors/validate.ts";
import { ownedCopy } from "../memory/owned-copy.ts";
import type { ReceivedBytes } from "../memory/delivery-slab.ts";
import { WAIT, type SessionDriver } from "./session-driver.ts";

/** Outgoing stream `id` (opened on the driver's Session) as a WritableStream. */
export function writableStream(driver: SessionDriver, id: number): WritableStream<Uint8Array> {
  const session = driver.session;
  /** Why the stream takes nothing more: it ended early (reset, cancelled by its reader), or the connection did. */
  const refusal = (): SluiceError | undefined => {
    const state = session.streamState(id);
    return state instanceof SluiceError ? state : session.endReason;
  };
  /** Gives the stream up: the peer's reader fails with ERR_SLUICE_RESET, and the stream's slot is free again. */
  const reset = (reason: unknown, message: string): void => {
    session.resetStream(id, new SluiceError("ERR_SLUICE_RESET", `stream ${id} ${message}`, reason === undefined ? undefined : { cause: reason }));
    driver.scheduleDrive();
  };
  return new WritableStream<Uint8Array>({
    write: async (chunk) => {
      // A sink's throw errors the WritableStream without calling abort(): reset here, or the stream
      // stays open for good, its reader waiting and one of the 1024 outgoing streams taken.
      try {
        validateBytes(chunk, "chunk");
      } catch (error) {
        reset(error, "was given a chunk that is not a Uint8Array");
        throw error;
      }
      await driver.until(() => {
        const refused = refusal();
        if (refused !== undefined) throw refused;
        return session.streamWritable(id) ? undefined : WAIT;
      });
      session.writeStream(id, ownedCopy(chunk, 0, chunk.length));
      driver.scheduleDrive();
    },
    close: () => {
      const refused = refusal();
      if (refused !== undefined) throw refused;
      session.finishStream(id);
      driver.scheduleDrive();
    },
    abort: (reason) => reset(reason, "was aborted by its writer"),
  });
}

/**
 * Incoming stream `id` (accepted from the driver's Session) as a ReadableStream of bytes: a BYOB
 * read that finds data waiting is filled straight from the stream's blocks (no piece allocated), and
 * a default reader takes pieces of their own (enqueue hands a byte stream's chunk buffer over).
 */
export function readableStream(driver: SessionDriver, id: number): ReadableStream<ReceivedBytes> {
  const session = driver.session;
  /** The stream's end: a BYOB read still waiting gets its buffer back, empty. */
  const end = (controller: ReadableByteStreamController): void => {
    controller.close();
    controller.byobRequest?.respond(0);
  };
  return new ReadableStream({
    type: "bytes",
    // A rejection errors the stream with its reason: the stream's own (reset, a broken rule) or the connection's.
    pull: async (controller) => {
      // Whatever a read answers, it may owe the peer credit, sent now: a piece may raise the stream's;
      // its end or its failure lets the peer open another stream. (The credit an end gave back once
      // waited for the next packet that happened to go, often a keep-alive 5 s later.)
      const request = controller.byobRequest;
      if (request !== null) {
        // Answered in the reader's own buffer only here, before anything awaits: a BYOB read released
        // while it waits (releaseLock(), then a default reader or pipeTo) leaves its request behind
        // with no reader, and bytes respond()ed into it go to the stream's queue without reaching
        // the read waiting there (Node 20 and Deno 2 alike, as the spec's algorithm has it): that
        // read waited for the next piece, and at the stream's end for good.
        const view = request.view!;
        let filled: number | null | undefined;
        try {
          filled = session.readStreamInto(id, new Uint8Array(view.buffer, view.byteOffset, view.byteLength));
        } catch (error) {
          driver.scheduleDrive();
          throw error;
        }
        if (filled !== undefined) driver.scheduleDrive();
        if (filled === null) return end(controller);
        if (filled !== undefined) return request.respond(filled);
      }
      // Nothing yet: what arrives goes as a piece of its own, which reaches whichever reader waits
      // then (a BYOB reader's buffer is filled from it), at most the BYOB read's room.
      const maxBytes = request === null ? Infinity : request.view!.byteLength;
      const piece = await driver.until(() => {
        const read = session.readStream(id, maxBytes); // null at the end: not a WAIT
        return read === undefined ? WAIT : read;
      }).finally(() => driver.scheduleDrive());
      if (piece === null) end(controller);
      else controller.enqueue(piece);
    },
    cancel: () => {
      session.cancelStream(id);
      driver.scheduleDrive();
    },
  }, { highWaterMark: 0 });
}
