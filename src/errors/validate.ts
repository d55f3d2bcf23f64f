// The package's one argument validator, after Node's (lib/internal/validators.js): each check names
// the argument as the caller wrote it ("options.port"), says what it must be and what it received,
// and throws an error whose class and code say what kind of mistake it is:
//  - a value of the wrong type                        TypeError  ERR_INVALID_ARG_TYPE
//  - a number out of range, or not an integer         RangeError ERR_OUT_OF_RANGE
//  - any other bad value (not one of the choices,
//    not an address, a key that does not import...)   TypeError  ERR_INVALID_ARG_VALUE
import { inspect } from "node:util";
import { codedError } from "./errors.ts";

/** "argument" for a plain name, "property" for a dotted one ("options.port"), as Node says. */
function kindOf(name: string): string {
  return name.includes(".") ? "property" : "argument";
}

/** What a wrong-typed value was, as Node's ERR_INVALID_ARG_TYPE says it. */
function receivedType(value: unknown): string {
  if (value === null || value === undefined) return String(value);
  switch (typeof value) {
    case "function":
      return `function ${value.name}`;
    case "object": {
      const name = (value as { constructor?: { name?: unknown } }).constructor?.name;
      return typeof name === "string" && name !== "" ? `an instance of ${name}` : inspect(value, { depth: -1 });
    }
    case "string": {
      const text = value.length > 28 ? `${value.slice(0, 25)}...` : value;
      return `type string (${text.includes("'") ? JSON.stringify(text) : `'${text}'`})`;
    }
    default:
      return `type ${typeof value} (${received(value)})`;
  }
}

/** A received value, as Node's ERR_OUT_OF_RANGE and ERR_INVALID_ARG_VALUE say it. */
function received(value: unknown): string {
  if (Number.isInteger(value) && Math.abs(value as number) > 2 ** 32) {
    return String(value).replace(/\B(?=(\d{3})+$)/g, "_"); // 4_294_967_297, as Node writes large integers
  }
  const text = inspect(value);
  return text.length > 128 ? `${text.slice(0, 128)}...` : text;
}

/** `The "name" argument must be <expected>. Received <what>`: a TypeError ERR_INVALID_ARG_TYPE. */
export function invalidArgType(name: string, expected: string, value: unknown, from: Function = invalidArgType): TypeError {
  return codedError(TypeError, "ERR_INVALID_ARG_TYPE", `The "${name}" ${kindOf(name)} must be ${expected}. Received ${receivedType(value)}`, from);
}

/** `The value of "name" is out of range. It must be <range>. Received <value>`: a RangeError ERR_OUT_OF_RANGE. */
export function outOfRange(name: string, range: string, value: unknown, from: Function = outOfRange): RangeError {
  return codedError(RangeError, "ERR_OUT_OF_RANGE", `The value of "${name}" is out of range. It must be ${range}. Received ${received(value)}`, from);
}

/** `The argument 'name' <reason>. Received <value>`: a TypeError ERR_INVALID_ARG_VALUE. */
export function invalidArgValue(name: string, value: unknown, reason: string, from: Function = invalidArgValue): TypeError {
  return codedError(TypeError, "ERR_INVALID_ARG_VALUE", `The ${kindOf(name)} '${name}' ${reason}. Received ${received(value)}`, from);
}

/**
 * Every key of T, listed once by the caller (a missing one is a compile error): what
 * validateKnownKeys takes as an options object's known keys.
 */
export function keysOf<T>() {
  return <const K extends readonly (keyof T & string)[]>(...keys: K & ([Exclude<keyof T, K[number]>] extends [never] ? unknown : { missing: Exclude<keyof T, K[number]> })): readonly string[] => keys;
}

/**
 * Each own key of the options object `value` is one of `known`: a misspelt option is a TypeError
 * (ERR_INVALID_ARG_VALUE) naming it and the known key nearest to it, where it was ignored and its
 * default used (`{ hots: "127.0.0.1" }` bound every interface).
 */
export function validateKnownKeys(value: object, name: string, known: readonly string[], from: Function = validateKnownKeys): void {
  for (const key of Object.keys(value)) {
    if (known.includes(key)) continue;
    const nearest = known.map((candidate) => ({ candidate, distance: editDistance(key.toLowerCase(), candidate.toLowerCase()) })).sort((a, b) => a.distance - b.distance)[0];
    const hint = nearest !== undefined && nearest.distance <= 2 ? ` (did you mean '${nearest.candidate}'?)` : "";
    throw invalidArgValue(`${name}.${key}`, (value as Record<string, unknown>)[key], `is not an option${hint}; the options are ${known.join(", ")}`, from);
  }
}

/** Levenshtein distance between two short strings (option names). */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) current.push(Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1)));
    previous = current;
  }
  return previous[b.length]!;
}

/** A plain object (not null, not an array, not a function). */
export function validateObject(value: unknown, name: string): asserts value is object {
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw invalidArgType(name, "of type object", value, validateObject);
}

/** An integer from `min` to `max` (a number of another kind is out of range; another type is not a number). */
export function validateInteger(value: unknown, name: string, min: number, max = Number.MAX_SAFE_INTEGER): asserts value is number {
  if (typeof value !== "number") throw invalidArgType(name, "of type number", value, validateInteger);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw outOfRange(name, max === Number.MAX_SAFE_INTEGER ? `an integer >= ${min}` : `an integer from ${min} to ${max}`, value, validateInteger);
  }
}

/**
 * A number within the bounds given: `above` and `below` exclude, `min` and `max` include. NaN never
 * is; Infinity is when no bound excludes it (`below: Infinity` for a finite number).
 */
export function validateNumber(
  value: unknown, name: string, bounds: { above?: number; min?: number; below?: number; max?: number },
): asserts value is number {
  if (typeof value !== "number") throw invalidArgType(name, "of type number", value, validateNumber);
  const { above, min, below, max } = bounds;
  if (Number.isNaN(value) || (above !== undefined && !(value > above)) || (min !== undefined && !(value >= min))
    || (below !== undefined && !(value < below)) || (max !== undefined && !(value <= max))) {
    const limits = [
      above !== undefined ? `> ${above}` : min !== undefined ? `>= ${min}` : undefined,
      below !== undefined ? `< ${below}` : max !== undefined ? `<= ${max}` : undefined,
    ].filter((limit) => limit !== undefined);
    throw outOfRange(name, `a number ${limits.join(" and ")}`.trimEnd(), value, validateNumber);
  }
}

/** A Uint8Array (a Buffer is one), of exactly `exactLength` bytes when given. */
export function validateBytes(value: unknown, name: string, exactLength?: number): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array)) throw invalidArgType(name, "an instance of Uint8Array", value, validateBytes);
  if (exactLength !== undefined && value.length !== exactLength) {
    throw outOfRange(`${name}.byteLength`, String(exactLength), value.length, validateBytes);
  }
}

/** A byte count no larger than `max`, the limit called `limit` (a packet, a message). */
export function validateByteLength(length: number, name: string, max: number, limit: string): void {
  if (length > max) throw outOfRange(`${name}.byteLength`, `<= ${max} (${limit})`, length, validateByteLength);
}

export function validateFunction(value: unknown, name: string): asserts value is (...args: never[]) => unknown {
  if (typeof value !== "function") throw invalidArgType(name, "of type function", value, validateFunction);
}

export function validateString(value: unknown, name: string): asserts value is string {
  if (typeof value !== "string") throw invalidArgType(name, "of type string", value, validateString);
}

export function validateBoolean(value: unknown, name: string): asserts value is boolean {
  if (typeof value !== "boolean") throw invalidArgType(name, "of type boolean", value, validateBoolean);
}

/** One of `allowed` (compared with ===). */
export function validateOneOf<T>(value: unknown, name: string, allowed: readonly T[]): asserts value is T {
  if (!allowed.includes(value as T)) {
    const choices = allowed.map((choice) => (typeof choice === "string" ? `'${choice}'` : String(choice))).join(", ");
    throw invalidArgValue(name, value, `must be one of: ${choices}`, validateOneOf);
  }
}

/** An AbortSignal or undefined, as Node's validateAbortSignal checks it (anything with `aborted`). */
export function validateAbortSignal(value: unknown, name: string): asserts value is AbortSignal | undefined {
  if (value !== undefined && (value === null || typeof value !== "object" || !("aborted" in value))) {
    throw invalidArgType(name, "an instance of AbortSignal", value, validateAbortSignal);
  }
}

/**
 * The `signal` of an operation's options (`{ signal }`, or undefined), checked, as is every key of
 * the options (`known`): a call that waits would wait for ever on a `{ timeout }` it ignored.
 */
export function signalOf(options: { signal?: AbortSignal | undefined } | undefined, name = "options", known: readonly string[] = ["signal"]): AbortSignal | undefined {
  if (options === undefined) return undefined;
  validateObject(options, name);
  validateKnownKeys(options, name, known);
  const { signal } = options;
  validateAbortSignal(signal, `${name}.signal`);
  return signal;
}
