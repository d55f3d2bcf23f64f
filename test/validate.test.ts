// The package's one argument validator: every check, every way it refuses, gives the class and the
// code Node's validators give, a message in Node's shape, and a stack that starts at the caller.
import { describe, expect, test } from "vitest";
import {
  invalidArgType, invalidArgValue, outOfRange, validateBoolean, validateByteLength, validateBytes, validateFunction,
  validateInteger, validateNumber, validateObject, validateOneOf, validateString,
} from "../src/errors/validate.ts";
import { caught, expectCoded } from "./support/errors.ts";

const TYPE = [TypeError, "ERR_INVALID_ARG_TYPE"] as const;
const RANGE = [RangeError, "ERR_OUT_OF_RANGE"] as const;
const VALUE = [TypeError, "ERR_INVALID_ARG_VALUE"] as const;

/** [what, the call, the class and code it must throw, its message]. */
const refusals: [string, () => void, readonly [ErrorConstructor, string], RegExp][] = [
  ["an object: null", () => validateObject(null, "options"), TYPE, /^The "options" argument must be of type object. Received null$/],
  ["an object: an array", () => validateObject([], "options"), TYPE, /Received an instance of Array$/],
  ["an object: a string", () => validateObject("x", "options.retry"), TYPE, /^The "options.retry" property must be of type object. Received type string \('x'\)$/],
  ["an integer: a string", () => validateInteger("x", "options.port", 0, 65535), TYPE, /^The "options.port" property must be of type number. Received type string \('x'\)$/],
  ["an integer: a fraction", () => validateInteger(1.5, "options.port", 0, 65535), RANGE, /^The value of "options.port" is out of range. It must be an integer from 0 to 65535. Received 1.5$/],
  ["an integer: NaN", () => validateInteger(Number.NaN, "capacity", 1, 10), RANGE, /Received NaN$/],
  ["an integer: below", () => validateInteger(-1, "capacity", 1, 10), RANGE, /It must be an integer from 1 to 10. Received -1$/],
  ["an integer: above", () => validateInteger(2 ** 40, "capacity", 1, 10), RANGE, /Received 1_099_511_627_776$/],
  ["an integer: no upper bound", () => validateInteger(0, "limit", 1), RANGE, /It must be an integer >= 1. Received 0$/],
  ["a number: a string", () => validateNumber("1", "options.jitter", { min: 0, below: 1 }), TYPE, /must be of type number. Received type string \('1'\)$/],
  ["a number: NaN", () => validateNumber(Number.NaN, "options.jitter", { min: 0, below: 1 }), RANGE, /It must be a number >= 0 and < 1. Received NaN$/],
  ["a number: at an excluded bound", () => validateNumber(1, "options.jitter", { min: 0, below: 1 }), RANGE, /Received 1$/],
  ["a number: Infinity where finite", () => validateNumber(Infinity, "options.intervalMs", { above: 0, below: Infinity }), RANGE, /It must be a number > 0 and < Infinity. Received Infinity$/],
  ["a number: above an included bound", () => validateNumber(3, "x", { max: 2 }), RANGE, /It must be a number <= 2. Received 3$/],
  ["bytes: an array", () => validateBytes([1, 2], "packet"), TYPE, /^The "packet" argument must be an instance of Uint8Array. Received an instance of Array$/],
  ["bytes: undefined", () => validateBytes(undefined, "packet"), TYPE, /Received undefined$/],
  ["bytes: the wrong length", () => validateBytes(new Uint8Array(31), "publicKey", 32), RANGE, /^The value of "publicKey.byteLength" is out of range. It must be 32. Received 31$/],
  ["a byte length over its limit", () => validateByteLength(101, "packet", 100, "maxPacketSize"), RANGE, /It must be <= 100 \(maxPacketSize\). Received 101$/],
  ["a function: an object", () => validateFunction({}, "visit"), TYPE, /^The "visit" argument must be of type function. Received an instance of Object$/],
  ["a string: a number", () => validateString(7, "options.host"), TYPE, /^The "options.host" property must be of type string. Received type number \(7\)$/],
  ["a string: a symbol", () => validateString(Symbol("s"), "x"), TYPE, /Received type symbol \(Symbol\(s\)\)$/],
  ["a boolean: a string", () => validateBoolean("yes", "options.gateway"), TYPE, /^The "options.gateway" property must be of type boolean. Received type string \('yes'\)$/],
  ["a boolean: a function", () => validateBoolean(function named() {}, "flag"), TYPE, /Received function named$/],
  ["one of: another string", () => validateOneOf("receiver", "handle.sluice", ["sender"]), VALUE, /^The property 'handle.sluice' must be one of: 'sender'. Received 'receiver'$/],
  ["one of: another number", () => validateOneOf(3000, "options.frameBytes", [1024, 2048]), VALUE, /^The property 'options.frameBytes' must be one of: 1024, 2048. Received 3000$/],
];

describe("every refusal has Node's class, code and message shape", () => {
  for (const [what, call, [Type, code], message] of refusals) {
    test(what, async () => expectCoded(await caught(call), Type, code, message));
  }
});

test("accepted values pass silently", () => {
  validateObject({}, "o");
  validateInteger(0, "i", 0, 0);
  validateInteger(Number.MAX_SAFE_INTEGER, "i", 1);
  validateNumber(0, "n", { min: 0, below: 1 });
  validateNumber(Infinity, "n", { min: 0 });
  validateBytes(Buffer.alloc(32), "b", 32);
  validateByteLength(100, "b", 100, "limit");
  validateFunction(() => {}, "f");
  validateString("", "s");
  validateBoolean(false, "b");
  validateOneOf(2048, "o", [1024, 2048]);
});

test("the error builders: a long value is cut, a quote picks JSON's quoting, and the stack starts at the caller", () => {
  expectCoded(invalidArgType("s", "of type number", "it's a very long string indeed, longer than 28"), ...TYPE, /Received type string \("it's a very long string i..."\)$/);
  expectCoded(outOfRange("n", ">= 0", -1), ...RANGE, /^The value of "n" is out of range. It must be >= 0. Received -1$/);
  expectCoded(invalidArgValue("a.b", "x".repeat(200), "is wrong"), ...VALUE, /^The property 'a.b' is wrong. Received 'x{127}\.\.\.$/);
  function callersFrame(): Error {
    try {
      validateInteger("x", "v", 0, 1);
    } catch (error) {
      return error as Error;
    }
    throw new Error("no error");
  }
  const error = callersFrame();
  expect(error.stack!.split("\n")[0]).toBe(`TypeError [ERR_INVALID_ARG_TYPE]: ${error.message}`);
  expect(error.stack!.split("\n")[1]).toMatch(/callersFrame/); // not validateInteger's insides
  expect(String(error)).toBe(`TypeError [ERR_INVALID_ARG_TYPE]: ${error.message}`);
  expect(error.name).toBe("TypeError");
  expect(Object.keys(error)).toEqual(["code"]);
});
