// A connection, as the application sees it: messages (send, recv), byte streams (openStream,
// acceptStream), close and stats. Everything waits on the Session's state through its driver
// (session-driver.ts), never on the socket.
import { illegalConstructor } from "../errors/errors.ts";
import { invalidArgType, validateByteLength, validateBytes, validateObject } from "../errors/validate.ts";
import { ownedCopy } from "../memory/owned-copy.ts";
import type { Address } from "../wire/address.ts";
import type { AddressChange } from "./address-changes.ts";
import type { SessionDriver } from "./session-driver.ts";
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

export class Connection {
  static {
    driverOfConnection = (connection) => connection.#driver;
  }

  /** The peer's static X25519 public key (32 bytes), authenticated by the handshake. */
  readonly remotePublicKey: Uint8Array;
  readonly #driver: SessionDriver;

  /** Not for applications: connections come from Transport.connect() and Transport.accept(). @internal */
  constructor(token: typeof FROM_TRANSPORT, driver: SessionDriver) {
    if (token !== FROM_TRANSPORT) throw illegalConstructor("connections come from Transport.connect() and Transport.accept()", Connection);
    this.#driver = driver;
    this.remotePublicKey = driver.remotePublicKey;
  }

  /**
   * Our own address as the peer sees it. The initiator learns it from the handshake's response; the
   * responder from the OBSERVED_ADDRESS frame the initiator sends right after the handshake (undefined
   * until it arrives: about when accept() resolves). From a gateway this is our address on the
   * internet; from a plain peer it is only that peer's view (transport.externalAddress counts gateways only).
   */
  get observedAddress(): Address | undefined {
    const address = this.#driver.observedAddress;
    return address && { ...address };
  }

  /**
   * The changes of remoteAddress from now on, as an async iterator that ends with the connection (or
   * when `signal` aborts): "moved" when an authenticated packet newer than any before comes from a new
   * address (a NAT rebinding), then "validated" once that address answers its challenge, or
   * "reverted" if it does not (see AddressChange). An iterator that is not read keeps only the newest
   * 16 changes.
   */
  addressChanges(options: { signal?: AbortSignal } = {}): AsyncGenerator<AddressChange, void, undefined> {
    validateObject(options, "options");
    const { signal } = options;
    if (signal !== undefined && !(signal instanceof AbortSignal)) throw invalidArgType("options.signal", "an instance of AbortSignal", signal);
    return this.#driver.addressChanges.subscribe(signal);
  }

  /** Where the peer's packets come from now. It changes only after a packet from the new address authenticates. */
  get remoteAddress(): Address {
    return this.#driver.remoteAddress;
  }

  /** Whether the connection is over (closed either way, or failed). */
  get closed(): boolean {
    return this.#driver.ended;
  }

  /** Why the connection failed: the retransmission limit, the idle timeout... (undefined if it closed cleanly or is open). */
  get error(): Error | undefined {
    return this.#driver.session.error;
  }

  /**
   * Sends one message, reliably and in order. Resolves once the message is in the send buffer (it
   * waits while the buffer is full: the peer is not reading, or the path is slow). Messages up to
   * one datagram go as one; larger ones, up to `maxMessageBytes` (default 64 MiB), are streamed.
   */
  async send(message: Uint8Array): Promise<void> {
    const driver = this.#driver;
    validateBytes(message, "message");
    validateByteLength(message.length, "message", driver.config.maxMessageBytes, "options.reliability.maxMessageBytes; use openStream() for more");
    await driver.until(() => driver.session.writable, () => driver.writeRefusal());
    driver.session.sendMessage(ownedCopy(message, 0, message.length)); // a slab copy: slice() allocates a backing store (~3 µs)
    driver.scheduleDrive();
  }

  /**
   * The next message, in the order sent; undefined once the connection is closed (after the messages
   * that had already arrived). Rejects with the reason if the connection failed.
   */
  async recv(): Promise<Uint8Array | undefined> {
    const driver = this.#driver;
    const session = driver.session;
    for (;;) {
      if (driver.closing) return undefined;
      const message = session.readMessage();
      if (message !== undefined) {
        driver.scheduleDrive(); // reading may have raised the peer's credit
        return message;
      }
      if (session.messagesEnded || driver.ended) {
        if (session.error) throw session.error;
        return undefined;
      }
      await driver.changed();
    }
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array> {
    for (;;) {
      const message = await this.recv();
      if (message === undefined) return;
      yield message;
    }
  }

  /**
   * Opens an outgoing byte stream. Writes resolve once the bytes are in the send buffer; close()
   * resolves once the peer has acknowledged every byte and the end.
   */
  openStream(): WritableStream<Uint8Array> {
    const driver = this.#driver;
    return writableStream(driver, driver.session.openStream(driver.now()));
  }

  /** The next stream the peer opened, or undefined once the connection is closed. */
  async acceptStream(): Promise<ReadableStream<Uint8Array> | undefined> {
    const driver = this.#driver;
    for (;;) {
      const id = driver.session.acceptStream();
      if (id !== undefined) return readableStream(driver, id);
      if (driver.ended || driver.closing || driver.session.state !== "open") return undefined;
      await driver.changed();
    }
  }

  /**
   * Closes gracefully: no more sends; the peer gets everything already sent, then an authenticated
   * CLOSE, and its recv() ends after the messages that arrived. Resolves once the peer acknowledged
   * the CLOSE (or the connection failed, e.g. the peer vanished: then it rejects with why).
   */
  async close(): Promise<void> {
    const driver = this.#driver;
    driver.closing = true;
    driver.session.close();
    driver.scheduleDrive();
    await driver.until(() => driver.session.state === "draining" || driver.session.state === "closed", () => undefined);
    if (driver.session.error) throw driver.session.error;
  }

  stats(): ConnectionStats {
    return this.#driver.stats();
  }
}
