// Reading a whole ReadableStream in tests: how many bytes, and their SHA-256.
import { createHash } from "node:crypto";

export async function readAll(stream: ReadableStream<Uint8Array>): Promise<{ sha256: string; bytes: number }> {
  const hash = createHash("sha256");
  let bytes = 0;
  const reader = stream.getReader();
  for (let read = await reader.read(); !read.done; read = await reader.read()) {
    hash.update(read.value);
    bytes += read.value.length;
  }
  return { sha256: hash.digest("hex"), bytes };
}
