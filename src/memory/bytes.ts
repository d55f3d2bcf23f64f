// Byte-array equality, the project's one copy (keys, path challenges, intros). Not constant-time:
// none of its callers compares a secret against a guess (MACs and tags are checked in the core).

/** Whether `a` and `b` hold the same bytes. */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
