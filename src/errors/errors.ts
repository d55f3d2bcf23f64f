// Errors that carry a `code`, as Node's own do: the class says what kind of mistake it is, the code
// says which one (stable across releases, so a program can test it without parsing the message).

/** The codes of Sluice's errors. */
export type ErrorCode =
  | "ERR_ILLEGAL_CONSTRUCTOR" | "ERR_INVALID_ARG_TYPE" | "ERR_INVALID_ARG_VALUE" | "ERR_OUT_OF_RANGE"
  /** connect() had no valid answer within its retry schedule. */
  | "ERR_SLUICE_CONNECT_TIMEOUT"
  /** The peer's protocol version and ours do not accept each other (an authenticated answer said so). */
  | "ERR_SLUICE_VERSION_MISMATCH"
  /** The transport was closed while the operation was in progress. */
  | "ERR_SLUICE_CLOSED"
  /** connectVia(): the introducer refused, did not answer, or its connection ended (the error's `reason` says which). */
  | "ERR_SLUICE_INTRODUCTION_FAILED";

/**
 * `new Type(message)` with `code` attached. Its stack starts at the caller of `from` (the check that
 * refused, not the check's insides), and its first line names the code as Node's do:
 * "TypeError [ERR_INVALID_ARG_TYPE]: The ...".
 */
export function codedError<E extends Error>(
  Type: new (message: string) => E, code: ErrorCode, message: string, from: Function,
): E & { code: ErrorCode } {
  const error = new Type(message) as E & { code: ErrorCode };
  // The header of a V8 stack is written when the stack is first read: name it with the code, read it,
  // and let the name fall back to the class's.
  error.name = `${Type.name} [${code}]`;
  Error.captureStackTrace(error, from);
  void error.stack;
  delete (error as { name?: string }).name;
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
