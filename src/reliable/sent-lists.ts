// A sent packet's lists of what it carried (data, and the rarely sent stream credits, stops,
// refusals, resets and control frames) start as one shared empty list and get a list of their own,
// sized to its first item, with that item: most packets carry one data frame and none of the rest,
// and every packet in flight lives through young-generation collections (six arrays were ~300 of its
// ~540 bytes: an empty one ~32, and a push into `[]` makes room for 17 items).

/**
 * The shared empty list: nothing adds to it (withSent replaces it). Not frozen: a frozen array's
 * elements kind made the loops over these lists generic (an iterator allocated per loop, measured).
 */
export const NONE_SENT: readonly never[] = [];

/** `list` with `item` added: a new list in place of NONE_SENT, else the same list. */
export function withSent<T>(list: readonly T[], item: T): readonly T[] {
  if (list === NONE_SENT) return [item];
  (list as T[]).push(item);
  return list;
}
