// Asserting coded errors: the class, the code and (optionally) the message of what a call threw.
import { expect } from "vitest";

/** What `call` threw (or its promise rejected with); fails the test if it did not. */
export async function caught(call: () => unknown): Promise<unknown> {
  try {
    await call();
  } catch (error) {
    return error;
  }
  throw new Error("expected an error, and nothing was thrown");
}

/** `error` is a `Type` with `code`, and its message matches `message` when given. */
export function expectCoded(error: unknown, Type: ErrorConstructor, code: string, message?: RegExp): void {
  expect(error).toBeInstanceOf(Type);
  expect((error as { code?: unknown }).code).toBe(code);
  if (message !== undefined) expect((error as Error).message).toMatch(message);
}
