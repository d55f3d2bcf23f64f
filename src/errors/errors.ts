// Every error Sluice raises carries a `code`, as Node's own do: the class says what kind of mistake it
// is, the code says which one (stable across releases, so a program can test it without parsing the
// message). ERROR_CODES below is the one list of them.

/**
 * Every `code` an error raised by Sluice can carry: Node's own for bad arguments and cancellation
 * (the same class and code Node's APIs give), `ERR_SLUICE_*` for what happens on a connection. Each
 * is its own name in ERROR_CODES, so `error.code === ERROR_CODES.ERR_SLUICE_RESET` reads as it should.
 */
export interface ErrorCodes {
  /** TypeError: an argument or option of the wrong type (Node's validators' code). */
  readonly ERR_INVALID_ARG_TYPE: "ERR_INVALID_ARG_TYPE";
  /** TypeError: an argument of the right type with a value that cannot be used (not an address, a key that does not work...). */
  readonly ERR_INVALID_ARG_VALUE: "ERR_INVALID_ARG_VALUE";
  /** RangeError: a number out of range, or not an integer where one is needed. */
  readonly ERR_OUT_OF_RANGE: "ERR_OUT_OF_RANGE";
  /** TypeError: `new` on a class whose instances come from a factory (Transport.bind(), channel()...). */
  readonly ERR_ILLEGAL_CONSTRUCTOR: "ERR_ILLEGAL_CONSTRUCTOR";
  /** TypeError: a call on an object that can no longer do it (a closed Sender, a Receiver moved to another thread). */
  readonly ERR_INVALID_STATE: "ERR_INVALID_STATE";
  /** AbortError: the operation's AbortSignal fired; `cause` is the signal's reason (as Node's APIs do). */
  readonly ABORT_ERR: "ABORT_ERR";
  /** Error: a bug in Sluice (an invariant did not hold). Please report it. */
  readonly ERR_INTERNAL_ASSERTION: "ERR_INTERNAL_ASSERTION";

  /** connect() got no valid answer within its retry schedule (the peer is down, or not a gateway, or the key is wrong). */
  readonly ERR_SLUICE_CONNECT_TIMEOUT: "ERR_SLUICE_CONNECT_TIMEOUT";
  /** The peer speaks a protocol version this node does not accept (or the other way round). */
  readonly ERR_SLUICE_VERSION_MISMATCH: "ERR_SLUICE_VERSION_MISMATCH";
  /** The peer stopped acknowledging: `reliability.deadPeerTimeoutMs` (or `maxRetransmissions`) ran out. */
  readonly ERR_SLUICE_PEER_UNREACHABLE: "ERR_SLUICE_PEER_UNREACHABLE";
  /** Nothing came from the peer for `reliability.idleTimeoutMs`. */
  readonly ERR_SLUICE_IDLE_TIMEOUT: "ERR_SLUICE_IDLE_TIMEOUT";
  /** This side closed the connection or the transport (close(), transport.close()), so the call cannot go on. */
  readonly ERR_SLUICE_CLOSED: "ERR_SLUICE_CLOSED";
  /**
   * close() gave up: the peer took none of what was still to deliver for `reliability.deadPeerTimeoutMs`
   * (it acknowledges, but stopped reading). The connection is aborted; what the peer had not taken is lost.
   */
  readonly ERR_SLUICE_CLOSE_TIMEOUT: "ERR_SLUICE_CLOSE_TIMEOUT";
  /** The peer closed the connection, so the call cannot go on. */
  readonly ERR_SLUICE_PEER_CLOSED: "ERR_SLUICE_PEER_CLOSED";
  /** This side aborted the connection with connection.abort(reason); `cause` is the reason. */
  readonly ERR_SLUICE_ABORTED: "ERR_SLUICE_ABORTED";
  /**
   * A new connection with the same peer took this one's place: this side connected to it again, or
   * the peer restarted (or lost its end) and connected again. What was not yet acknowledged here is
   * lost; the new connection is connect()'s or accept()'s.
   */
  readonly ERR_SLUICE_REPLACED: "ERR_SLUICE_REPLACED";
  /** The stream's writer reset it (writer.abort(), or a write of a chunk that is not a Uint8Array): its reader fails with this. */
  readonly ERR_SLUICE_RESET: "ERR_SLUICE_RESET";
  /** The stream's reader cancelled it (reader.cancel()): its writer's writes and close() fail with this. */
  readonly ERR_SLUICE_STREAM_CANCELLED: "ERR_SLUICE_STREAM_CANCELLED";
  /**
   * The peer broke the protocol: on a stream (data past its end or its credit, too many gaps), that
   * stream fails alone; on the connection (an acknowledgement of a packet never sent), it fails.
   */
  readonly ERR_SLUICE_PROTOCOL_VIOLATION: "ERR_SLUICE_PROTOCOL_VIOLATION";
  /** A message is larger than the receiving peer accepts (its `reliability.maxMessageBytes`, named in the message). */
  readonly ERR_SLUICE_MESSAGE_TOO_LARGE: "ERR_SLUICE_MESSAGE_TOO_LARGE";
  /** The arena's frame pool has no frame left (for a channel, a lane, or a transport's scratch frames). */
  readonly ERR_SLUICE_POOL_EXHAUSTED: "ERR_SLUICE_POOL_EXHAUSTED";
  /** A bound of the options or of the protocol is reached (connections, handshakes, open streams, lanes). */
  readonly ERR_SLUICE_LIMIT_REACHED: "ERR_SLUICE_LIMIT_REACHED";
  /** The UDP socket could not be bound; `cause` is the platform's error (EADDRINUSE, EACCES...). */
  readonly ERR_SLUICE_BIND_FAILED: "ERR_SLUICE_BIND_FAILED";
  /** A host name did not resolve to an address (dns.lookup failed); `cause` is the resolver's error. */
  readonly ERR_SLUICE_HOST_NOT_FOUND: "ERR_SLUICE_HOST_NOT_FOUND";
  /** connectVia(): the introducer refused, did not answer, or its connection ended (the error's `reason` says which). */
  readonly ERR_SLUICE_INTRODUCTION_FAILED: "ERR_SLUICE_INTRODUCTION_FAILED";
}

/** Every code, by name (see ErrorCodes for what each means). */
export const ERROR_CODES: ErrorCodes = Object.freeze({
  ERR_INVALID_ARG_TYPE: "ERR_INVALID_ARG_TYPE",
  ERR_INVALID_ARG_VALUE: "ERR_INVALID_ARG_VALUE",
  ERR_OUT_OF_RANGE: "ERR_OUT_OF_RANGE",
  ERR_ILLEGAL_CONSTRUCTOR: "ERR_ILLEGAL_CONSTRUCTOR",
  ERR_INVALID_STATE: "ERR_INVALID_STATE",
  ABORT_ERR: "ABORT_ERR",
  ERR_INTERNAL_ASSERTION: "ERR_INTERNAL_ASSERTION",
  ERR_SLUICE_CONNECT_TIMEOUT: "ERR_SLUICE_CONNECT_TIMEOUT",
  ERR_SLUICE_VERSION_MISMATCH: "ERR_SLUICE_VERSION_MISMATCH",
  ERR_SLUICE_PEER_UNREACHABLE: "ERR_SLUICE_PEER_UNREACHABLE",
  ERR_SLUICE_IDLE_TIMEOUT: "ERR_SLUICE_IDLE_TIMEOUT",
  ERR_SLUICE_CLOSED: "ERR_SLUICE_CLOSED",
  ERR_SLUICE_CLOSE_TIMEOUT: "ERR_SLUICE_CLOSE_TIMEOUT",
  ERR_SLUICE_PEER_CLOSED: "ERR_SLUICE_PEER_CLOSED",
  ERR_SLUICE_ABORTED: "ERR_SLUICE_ABORTED",
  ERR_SLUICE_REPLACED: "ERR_SLUICE_REPLACED",
  ERR_SLUICE_RESET: "ERR_SLUICE_RESET",
  ERR_SLUICE_STREAM_CANCELLED: "ERR_SLUICE_STREAM_CANCELLED",
  ERR_SLUICE_PROTOCOL_VIOLATION: "ERR_SLUICE_PROTOCOL_VIOLATION",
  ERR_SLUICE_MESSAGE_TOO_LARGE: "ERR_SLUICE_MESSAGE_TOO_LARGE",
  ERR_SLUICE_POOL_EXHAUSTED: "ERR_SLUICE_POOL_EXHAUSTED",
  ERR_SLUICE_LIMIT_REACHED: "ERR_SLUICE_LIMIT_REACHED",
  ERR_SLUICE_BIND_FAILED: "ERR_SLUICE_BIND_FAILED",
  ERR_SLUICE_HOST_NOT_FOUND: "ERR_SLUICE_HOST_NOT_FOUND",
  ERR_SLUICE_INTRODUCTION_FAILED: "ERR_SLUICE_INTRODUCTION_FAILED",
});

/** The codes of Sluice's errors. */
export type ErrorCode = keyof ErrorCodes;
/** The codes of what happens on a connection (SluiceError's). */
export type SluiceErrorCode = Extract<ErrorCode, `ERR_SLUICE_${string}`> | "ERR_INTERNAL_ASSERTION";

/** Names the stack's first line with the code as Node does ("Error [ERR_X]: ..."), for any error class. */
function headStack(error: Error, displayName: string, code: string, from: Function): void {
  // The header of a V8 stack is written when the stack is first read: name it with the code, read it,
  // and let the name fall back to the class's.
  const own = Object.prototype.hasOwnProperty.call(error, "name");
  const name = error.name;
  error.name = `${displayName} [${code}]`;
  Error.captureStackTrace(error, from);
  void error.stack;
  if (own) error.name = name;
  else delete (error as { name?: string }).name;
}

/** Why a gateway refused: its policy, no connection with that key, or too many requests. */
export type RefusalReason = "notAllowed" | "unknownPeer" | "rateLimited";
/** Why a request failed: the introducer's refusal, or no answer (none in time, or its connection ended). */
export type IntroductionFailure = RefusalReason | "noAnswer";

/**
 * What goes wrong on a connection, a stream or a transport (not a bad argument: those are Node's
 * TypeError and RangeError). `code` says which (ERROR_CODES); `cause`, when set, what caused it.
 */
export class SluiceError extends Error {
  readonly code: SluiceErrorCode;
  /** Why connectVia() failed: set on ERR_SLUICE_INTRODUCTION_FAILED only. */
  declare readonly reason?: IntroductionFailure;

  constructor(code: SluiceErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    headStack(this, "SluiceError", code, new.target);
  }

  override toString(): string {
    return `${this.name} [${this.code}]: ${this.message}`;
  }
}
Object.defineProperty(SluiceError.prototype, "name", { value: "SluiceError", writable: true, configurable: true, enumerable: false });

/**
 * `new Type(message)` with `code` attached. Its stack starts at the caller of `from` (the check that
 * refused, not the check's insides), and its first line names the code as Node's do:
 * "TypeError [ERR_INVALID_ARG_TYPE]: The ...".
 */
export function codedError<E extends Error>(
  Type: new (message: string) => E, code: ErrorCode, message: string, from: Function,
): E & { code: ErrorCode } {
  const error = new Type(message) as E & { code: ErrorCode };
  headStack(error, Type.name, code, from);
  error.code = code;
  Object.defineProperty(error, "toString", {
    value(this: Error) {
      return `${this.name} [${code}]: ${this.message}`;
    },
    enumerable: false,
    configurable: true,
    writable: true,
  });
  return error;
}

/**
 * What a public class's constructor throws when called from outside the package (its first argument
 * is a token only its own module holds): "Illegal constructor: <how to get one instead>".
 */
export function illegalConstructor(instead: string, from: Function): TypeError {
  return codedError(TypeError, "ERR_ILLEGAL_CONSTRUCTOR", `Illegal constructor: ${instead}`, from);
}

/** A call on an object that can no longer do it: TypeError ERR_INVALID_STATE, as Node's streams say. */
export function invalidState(message: string, from: Function): TypeError {
  return codedError(TypeError, "ERR_INVALID_STATE", `Invalid state: ${message}`, from);
}

/** The arena has no frame for `what`: RangeError ERR_SLUICE_POOL_EXHAUSTED. */
export function poolExhausted(what: string, from: Function): RangeError {
  return codedError(RangeError, "ERR_SLUICE_POOL_EXHAUSTED", `the arena's frame pool is exhausted: no room for ${what}`, from);
}

/** A bound is reached: RangeError ERR_SLUICE_LIMIT_REACHED (the message names the bound and how to raise it). */
export function limitReached(message: string, from: Function): RangeError {
  return codedError(RangeError, "ERR_SLUICE_LIMIT_REACHED", message, from);
}

/** An invariant of Sluice's own did not hold (`cause`: what a dependency threw): a bug, never the caller's mistake. */
export function internalAssertion(message: string, cause?: unknown): SluiceError {
  return new SluiceError("ERR_INTERNAL_ASSERTION", `${message} (a bug in Sluice: please report it)`, cause === undefined ? undefined : { cause });
}

/**
 * Node's AbortError: `name` "AbortError", `code` "ABORT_ERR", message "The operation was aborted",
 * `cause` the signal's reason, as node:events, node:timers/promises and fetch give.
 */
class AbortError extends Error {
  readonly code = "ABORT_ERR" as const;

  constructor(message = "The operation was aborted", options?: { cause?: unknown }) {
    super(message, options);
  }
}
Object.defineProperty(AbortError.prototype, "name", { value: "AbortError", writable: true, configurable: true, enumerable: false });

/** The AbortError for `signal` (which fired): its reason as the cause. */
export function abortErrorOf(signal: AbortSignal): AbortError {
  return new AbortError(undefined, { cause: signal.reason });
}
