// A connection, as the application sees it: messages (send, recv), byte streams (openStream,
// acceptStream), flush, close, abort, address changes and stats. Everything waits on the Session's
// state through its driver (session-driver.ts), never on the socket, and every wait takes an AbortSignal.
import { abortErrorOf, illegalConstructor, SluiceError } from "../errors/errors.ts";
import { signalOf, validateByteLength, validateBytes } from "../errors/validate.ts";
import { ownedCopy } from "../memory/owned-copy.ts";
import type { ReceivedBytes } from "../memory/delivery-slab.ts";
import type { Address } from "../wire/address.ts";
import type { AddressChangeIterator } from "./address-changes.ts";
import { EachUntilEnd, type ConnectionIterator } from "./connection-iterator.ts";
import { ignore, WAIT, type SessionDriver } from "./session-driver.ts";
import type { ConnectionStats } from "./stats.ts";
import { readableStream, writableStream } from "./streams.ts";

/** The token only this module holds: connections come from a transport's connect() and accept(). */
const FROM_TRANSPORT = Symbol("Connection");

let driverOfConnection: (connection: Connection) => SessionDriver;
/** One face per driver: a connection handed out twice (connect(), then connectVia()) is the same object. */
const faces = new WeakMap<SessionDriver, Connection>();

/** The Connection that is `driver`'s public face. */
export function connectionFor(driver: SessionDriver): Connection {
  let connection = faces.get(driver);
  if (connection === undefined) faces.set(driver, (connection = new Connection(FROM_TRANSPORT, driver)));
  return connection;
}

/** The driver behind `connection` (for the seams of src/internal.ts). */
export function driverOf(connection: Connection): SessionDriver {
  return driverOfConnection(connection);
}

/** What a call that may wait takes: an AbortSignal that cancels the wait (Node's AbortError). */
export interface WaitOptions {
  signal?: AbortSignal | undefined;
}

const RESOLVED = Promise.resolve();

export class Connection {
  static {
    driverOfConnection = (connection) => connection.#driver;
  }

  readonly #driver: SessionDriver;
  /** Waiting sends take tickets and queue in ticket order; the fast path only when none waits. */
  #sendTickets = 0;
  #sendTurn = 0;
  readonly #abandonedSendTickets = new Set<number>();

  /** Not for applications: connections come from Transport.connect() and Transport.accept(). @internal */
  constructor(token: typeof FROM_TRANSPORT, driver: SessionDriver) {
    if (token !== FROM_TRANSPORT) throw illegalConstructor("connections come from Transport.connect() and Transport.accept()", Connection);
    this.#driver = driver;
  }

  /**
   * Our own address as the peer sees it. The initiator learns it from the handshake's response; the
   * responder from the OBSERVED_ADDRESS frame the initiator sends right after the handshake (undefined
   * until it arrives: about when accept() resolves); both from a new OBSERVED_ADDRESS once the peer's
   * connection has validated a new address of ours (we changed networks). From a gateway this is our address on the
   * internet; from a plain peer it is only that peer's view (transport.externalAddress counts gateways only).
   */
  get observedAddress(): Address | undefined {
    const address = this.#driver.observedAddress;
    return address && { ...address };
  }

  /**
   * The changes of remoteAddress from now on, as an async iterator that ends with the connection:
   * "moved" when an authenticated packet newer than any before comes from a new address (a NAT
   * rebinding), then "validated" once that address answers its challenge, or "reverted" if it does
   * not; "moved" then "validated" at once when a re-punch found the peer (a connection the rendezvous
   * made, silent for REPUNCH_AFTER_MS, asks its introducer where the peer is now; see REPUNCH_AFTER_MS);
   * "direct" when a relayed connection moves to a direct path (see AddressChange). Each call is a
   * subscription of its own, from the call on; an iterator that is not read keeps only the newest 16
   * changes (MAX_QUEUED_ADDRESS_CHANGES). return() (a `for await` left early) ends it at once, even
   * while a next() waits, which then settles with done. Once `options.signal` aborts, a waiting
   * next() rejects with an AbortError (or the next next() does), queued changes are dropped, and the
   * iterator is done after that.
   */
  addressChanges(options?: WaitOptions): AddressChangeIterator {
    return this.#driver.addressChanges.subscribe(signalOf(options));
  }

  /** The peer's static X25519 public key (32 bytes, a copy), authenticated by the handshake. */
  get remotePublicKey(): Uint8Array {
    return new Uint8Array(this.#driver.remotePublicKey);
  }

  /**
   * How packets reach the peer: "direct", or "relayed" through a gateway (remoteAddress is then the
   * gateway's, with its relay id). A relayed connection keeps probing the peer's direct addresses and
   * moves to the first that answers (an address change of kind "direct").
   */
  get path(): "direct" | "relayed" {
    return this.#driver.remoteAddress.relay === undefined ? "direct" : "relayed";
  }

  /** Where the peer's packets come from now. It changes only after a packet from the new address authenticates. */
  get remoteAddress(): Address {
    return this.#driver.remoteAddress;
  }

  /**
   * Whether the connection is over for the application: true once close() resolved (the peer
   * acknowledged the CLOSE), once the peer closed it, and after abort(), transport.close() or a failure.
   */
  get closed(): boolean {
    const state = this.#driver.session.state;
    return state === "draining" || state === "closed";
  }

  /**
   * Settles when the connection is over on this side, either side having closed it, and its draining
   * done (its id and memory released): resolves after a clean close, rejects with `error` if it
   * failed or was aborted. Never an unhandled rejection: ignoring it is safe. Draining lasts 3 RTOs
   * after the CLOSE (at least 3 × reliability.rtoFloorMs, 600 ms by default; seconds on a loaded
   * path), answering the peer's late packets. recv() answers undefined (and `closed` is true) as
   * soon as the peer's CLOSE arrives: the way to learn at once that the peer left.
   */
  get whenClosed(): Promise<void> {
    return this.#driver.whenEnded;
  }

  /**
   * Why the connection failed (ERR_SLUICE_PEER_UNREACHABLE, ERR_SLUICE_IDLE_TIMEOUT, ERR_SLUICE_ABORTED...);
   * undefined while open or after a clean close.
   */
  get error(): Error | undefined {
    return this.#driver.session.error;
  }

  /**
   * Sends one message, reliably and in order. Resolves once the message is in the send buffer (it
   * waits while the buffer is full and messages hold a quarter of it or more: the peer is not
   * reading, or the path is slow; a quarter is always there for messages, as one is for streams,
   * so neither kind's backlog keeps the other waiting). Sends that wait
   * go into the buffer in the order they were called, each once there is room for it; a send called
   * while others wait waits behind them. The message's bytes are copied as it goes into the buffer: at the
   * call when it resolves at once, else when its turn comes, so bytes given to a send that waits must
   * not change until it resolves (reusing one buffer for un-awaited sends sends what it holds then). Messages up to
   * one datagram go as one; larger ones, up to `maxMessageBytes` (default 64 MiB), are streamed.
   *
   * A send that is still waiting when the connection ends (close(), abort(), transport.close(), the
   * peer closing, a failure) rejects with why (ERR_SLUICE_CLOSED, ...), but never as an unhandled
   * rejection: un-awaited sends are safe, and an await still sees the error. A send called after the
   * end rejects as any call does. If the peer refused an earlier message for its size, the next
   * send() (or flush()) rejects with ERR_SLUICE_MESSAGE_TOO_LARGE naming the peer's limit, and sends
   * over that limit reject at once from then on.
   */
  send(message: Uint8Array, options?: WaitOptions): Promise<void> {
    const driver = this.#driver;
    const session = driver.session;
    let signal: AbortSignal | undefined;
    try {
      validateBytes(message, "message");
      validateByteLength(message.length, "message", driver.config.maxMessageBytes, "options.reliability.maxMessageBytes; use openStream() for more");
      signal = signalOf(options);
      if (signal?.aborted) throw abortErrorOf(signal);
      const refused = session.takeMessageRefusal() ?? session.overPeerLimit(message.length);
      if (refused !== undefined) throw refused;
      if (this.#sendTurn === this.#sendTickets && session.writable) {
        this.#queue(message); // room now and nobody waiting ahead: no wait, no microtask
        return RESOLVED;
      }
      const ended = session.endReason;
      if (ended !== undefined) throw ended;
    } catch (error) {
      return Promise.reject(error);
    }
    // Waiting sends queue in the order they were called, each once there is room for it: a send
    // queues in the same synchronous step as its check, so sends woken together cannot all see the
    // room one of them takes (un-awaited sends held 92 MiB against a 4 MiB buffer when they were
    // queued after the wait).
    const ticket = this.#sendTickets++;
    const sent: Promise<void> = driver.until(() => {
      const refused = session.takeMessageRefusal() ?? session.endReason;
      if (refused !== undefined) throw refused;
      if (ticket !== this.#sendTurn || !session.writable) return WAIT;
      this.#queue(message);
      this.#passSendTurn();
      return undefined;
    }, signal).catch((error: unknown) => {
      this.#abandonSendTurn(ticket);
      if (error === session.endReason) sent.catch(ignore); // the connection ended: reported by recv(), whenClosed, `error`
      throw error;
    });
    return sent;
  }

  /** The next waiting send's turn, past those that gave up waiting (aborted, or the connection ended). */
  #passSendTurn(): void {
    this.#sendTurn++;
    while (this.#abandonedSendTickets.delete(this.#sendTurn)) this.#sendTurn++;
  }

  #abandonSendTurn(ticket: number): void {
    if (ticket !== this.#sendTurn) {
      this.#abandonedSendTickets.add(ticket);
      return;
    }
    this.#passSendTurn();
    this.#driver.scheduleDrive(); // the drive wakes the waiting sends: the next one's turn has come
  }

  #queue(message: Uint8Array): void {
    this.#driver.session.sendMessage(ownedCopy(message, 0, message.length)); // a slab copy: slice() allocates a backing store (~3 µs)
    this.#driver.scheduleDrive();
  }

  /**
   * The next message, in the order sent, as bytes of its own (see "Received memory" in
   * docs/design.md: a small message shares its `.buffer` with earlier ones of this connection, so
   * transfer a copy, `message.slice()`, if you keep those); undefined once the connection is closed, after the messages that had already
   * arrived whole: when the peer closed, and also after this side's close() (messages that arrive
   * after close() are not delivered), as an incoming stream's reader still gets the bytes that arrived
   * before. Rejects with the reason if the connection failed; after abort() or transport.close() it
   * ends at once (rejects with ERR_SLUICE_ABORTED, or undefined), dropping what had arrived.
   */
  recv(options?: WaitOptions): Promise<ReceivedBytes | undefined> {
    const driver = this.#driver;
    const session = driver.session;
    return this.#wait(options, () => {
      if (driver.aborted) return this.#over();
      const message = session.readMessage();
      if (message !== undefined) {
        // Reading raises the peer's credit, but only now and then by enough to send: a drive per read
        // ran before the application could answer (a microtask ahead of its send), found nothing to
        // send, and the answer took a second drive.
        if (session.messageCreditDue) driver.scheduleDrive();
        return message;
      }
      return session.messagesEnded || driver.ended ? this.#over() : WAIT;
    });
  }

  /** What a call that waits for the peer answers once the connection is over: undefined, or why it failed. */
  #over(): undefined {
    const error = this.#driver.session.error;
    if (error !== undefined) throw error;
    return undefined;
  }

  /** Runs `attempt` now and after every change until it answers (driver.until), cancelled by `options.signal`. */
  #wait<T>(options: WaitOptions | undefined, attempt: () => T | typeof WAIT): Promise<T> {
    let signal: AbortSignal | undefined;
    try {
      signal = signalOf(options);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#driver.until(attempt, signal);
  }

  /**
   * `for await (const message of connection)`: recv() per step, done when recv() answers undefined.
   * return() (a loop's `break`) ends it at once: a waiting step settles done, and the message it waited
   * for stays for the next recv() (an async generator's return() waited for the next message).
   */
  [Symbol.asyncIterator](): MessageIterator {
    return new EachUntilEnd((signal) => this.recv({ signal }));
  }

  /**
   * Opens an outgoing byte stream. Opening sends nothing (as in QUIC): the peer's acceptStream()
   * sees the stream when its first bytes arrive, or its end (close() with nothing written is enough).
   * The peer admits streams in the order they were opened, at most its `reliability.maxIncomingStreams`
   * (default 16) open at once; a stream past them stays unseen, its writes waiting, and each stream
   * the peer is done with (read to its end, failed, or cancelled) admits the next. Writes resolve
   * once the bytes are in the send buffer: they wait while it is full and streams hold a quarter of it
   * or more (`reliability.sendBufferBytes`; a write's bytes past its stream's credit do not count),
   * until the peer admits the stream, and while the stream is its reader's window (the peer's
   * `streamWindowBytes`, 1 MiB by default) ahead of its reader (a write is taken whole while any of
   * the window is left). close() resolves once the end is queued after them, whether or not the peer
   * has admitted or accepted the stream yet: `connection.flush()` waits for the peer's acknowledgement. If the reader cancels, pending and later
   * writes and close() reject with ERR_SLUICE_STREAM_CANCELLED; abort() resets the stream (its reader
   * fails with ERR_SLUICE_RESET), as does a write of a chunk that is not a Uint8Array (which rejects
   * with a TypeError, ERR_INVALID_ARG_TYPE: a string needs a TextEncoderStream first).
   *
   * Throws at once (no stream opened): a RangeError (ERR_SLUICE_LIMIT_REACHED) while 1024 outgoing
   * streams are open, a stream staying open until the peer acknowledged its end or it was reset;
   * the connection's end reason (ERR_SLUICE_CLOSED, ERR_SLUICE_PEER_CLOSED...) once it ended.
   */
  openStream(): WritableStream<Uint8Array> {
    const driver = this.#driver;
    return writableStream(driver, driver.session.openStream());
  }

  /**
   * The next stream the peer opened, or undefined once the connection is closed. Rejects with the
   * reason if the connection failed or was aborted. The stream is a byte stream: a default reader
   * (or `for await`) gets what arrived in order, up to 64 KiB a chunk, each chunk in an ArrayBuffer
   * of its own; `getReader({ mode: "byob" })` reads into the application's own buffer instead (no
   * chunk allocated for a read that finds data waiting; one that waits gets it through a chunk of its
   * own, which reaches the next reader if this one lets go meanwhile). Nothing is read ahead of the
   * reader: the peer's credit follows it.
   */
  acceptStream(options?: WaitOptions): Promise<ReadableStream<ReceivedBytes> | undefined> {
    const driver = this.#driver;
    const session = driver.session;
    return this.#wait(options, () => {
      const id = session.acceptStream();
      if (id !== undefined) return readableStream(driver, id);
      return driver.ended || driver.closing || session.state !== "open" ? this.#over() : WAIT;
    });
  }

  /**
   * Resolves once the peer acknowledged everything written so far: every message sent, and every
   * stream's bytes and end (a stream that was reset or cancelled counts as done with). Rejects with
   * ERR_SLUICE_MESSAGE_TOO_LARGE if the peer refused a message (not yet reported), or with why the
   * connection ended first.
   */
  flush(options?: WaitOptions): Promise<void> {
    const session = this.#driver.session;
    const mark = session.writtenMark();
    return this.#wait(options, () => {
      const refused = session.takeMessageRefusal();
      if (refused !== undefined) throw refused;
      return session.flushed(mark) ? undefined : WAIT;
    });
  }

  /**
   * Closes gracefully: no more sends; the peer gets everything already sent, then an authenticated
   * CLOSE, and its recv() ends after the messages that arrived. A stream's write is sent once its
   * promise resolved: one still pending, even one called just before close() (a WritableStream hands
   * a write to Sluice a turn later), rejects with ERR_SLUICE_CLOSED, as do the stream's close() and
   * later writes, and the peer never sees the stream end cleanly (its reader, if it saw the stream, fails). Await the writer's close() (or the
   * pipeline() or pipeTo()) before close() for a stream's bytes and end to arrive. Resolves once the peer acknowledged
   * the CLOSE (`closed` is then true), or rejects with why the connection failed first (a vanished
   * peer is noticed within reliability.deadPeerTimeoutMs). It never waits forever on a peer that
   * stopped reading: when the peer, still heard from (its keep-alives at least), takes none of what is
   * left to deliver for deadPeerTimeoutMs, the close gives up and rejects with ERR_SLUICE_CLOSE_TIMEOUT
   * (the connection is aborted; a slow peer that still reads is waited for). Messages that had arrived stay readable with recv().
   * Once the peer closed, no CLOSE goes (only the acknowledgement of the peer's, if still owed) and it resolves at once.
   */
  async close(): Promise<void> {
    const driver = this.#driver;
    const session = driver.session;
    driver.close();
    await driver.until(() => (session.state === "draining" || session.state === "closed" ? undefined : WAIT));
    if (session.error !== undefined) throw session.error;
  }

  /**
   * Closes at once: one CLOSE goes to the peer (not retransmitted), nothing more is sent or received.
   * Once the peer closed, no CLOSE goes: only the acknowledgement of the peer's CLOSE, if still owed
   * (the peer's close() waits for it), once.
   * Calls still waiting (send, recv, acceptStream, flush, close) reject with ERR_SLUICE_ABORTED, whose
   * `cause` is `reason`; so do `whenClosed` and later calls, and `error` is that error.
   */
  abort(reason?: unknown): void {
    const detail = reason === undefined ? "" : `: ${reason instanceof Error ? reason.message : String(reason)}`;
    this.#driver.abort(new SluiceError("ERR_SLUICE_ABORTED", `the connection was aborted${detail}`, reason === undefined ? undefined : { cause: reason }));
  }

  /** `await using`: closes gracefully as close() does, and resolves even if the connection failed meanwhile (see `error`). */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close().catch(ignore);
  }

  stats(): ConnectionStats {
    return this.#driver.stats();
  }
}

/**
 * What `connection[Symbol.asyncIterator]()` answers: next() is recv(), done once recv() answers
 * undefined or the iterator was ended, and rejects as recv() does. return() settles at once, even
 * while a next() waits, which then settles with done, its message left for a later recv().
 */
export type MessageIterator = ConnectionIterator<ReceivedBytes>;
