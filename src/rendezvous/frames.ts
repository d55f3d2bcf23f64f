// The bodies of the control frames a connection carries for addresses and the rendezvous (docs/wire.md,
// "Control frames"). The Session delivers each frame once, in order; these read and write what is
// inside. Every body has an exact length: anything else is malformed (ignored and counted by the host).
import type { RefusalReason } from "../errors/errors.ts";
import { ADDRESS_BYTES, readAddress, writeAddress, type Address } from "../wire/address.ts";

/** The responder's address as the initiator sees it: sent once by the initiator after the handshake. */
export const CONTROL_OBSERVED_ADDRESS = 0x20;
/** The sender's local addresses (bound port on its interfaces): sent once to a gateway after the handshake. */
export const CONTROL_LOCAL_ADDRESSES = 0x21;
/** Asks the gateway to introduce us to the holder of a key. */
export const CONTROL_INTRODUCE_REQUEST = 0x22;
/** The gateway introduces a peer: its key, the address the gateway sees it at, its local addresses. */
export const CONTROL_INTRODUCTION = 0x23;
/** The gateway will not introduce us as asked, and why. */
export const CONTROL_INTRODUCE_REFUSED = 0x24;
/** With an introduction: the gateway will relay to the introduced peer under this relay id, if no direct path opens. */
export const CONTROL_RELAY_OFFER = 0x25;

/** Local addresses one frame carries at most (a host's interfaces beyond these are left out). */
export const MAX_LOCAL_ADDRESSES = 4;
const KEY_BYTES = 32;

const REASON_CODES: Record<RefusalReason, number> = { notAllowed: 1, unknownPeer: 2, rateLimited: 3 };
const REASONS = new Map(Object.entries(REASON_CODES).map(([reason, code]) => [code, reason as RefusalReason]));

/** What an introduction says about the peer it introduces. */
export interface Introduced {
  /** The request it answers (0: not asked for by its receiver). */
  requestId: number;
  key: Uint8Array;
  /** The peer's address as the introducer sees it. */
  address: Address;
  localAddresses: Address[];
}

export type ControlMessage =
  | { type: typeof CONTROL_OBSERVED_ADDRESS; address: Address }
  | { type: typeof CONTROL_LOCAL_ADDRESSES; addresses: Address[] }
  | { type: typeof CONTROL_INTRODUCE_REQUEST; requestId: number; key: Uint8Array }
  | ({ type: typeof CONTROL_INTRODUCTION } & Introduced)
  | { type: typeof CONTROL_INTRODUCE_REFUSED; requestId: number; reason: RefusalReason }
  | { type: typeof CONTROL_RELAY_OFFER; key: Uint8Array; relayId: number };

function view(body: Uint8Array): DataView {
  return new DataView(body.buffer, body.byteOffset, body.byteLength);
}

/** count (u8) | count × address (19), at `at`. */
function writeAddressList(addresses: readonly Address[], into: Uint8Array, at: number): void {
  into[at] = addresses.length;
  addresses.forEach((address, i) => writeAddress(address, into, at + 1 + i * ADDRESS_BYTES));
}

/** The list at `at`, if it fills the body exactly and every address reads; undefined otherwise. */
function readAddressList(body: Uint8Array, at: number): Address[] | undefined {
  const count = body[at];
  if (count === undefined || count > MAX_LOCAL_ADDRESSES || body.length !== at + 1 + count * ADDRESS_BYTES) return undefined;
  const addresses: Address[] = [];
  for (let i = 0; i < count; i++) {
    const address = readAddress(body, at + 1 + i * ADDRESS_BYTES);
    if (address === undefined) return undefined;
    addresses.push(address);
  }
  return addresses;
}

export function observedAddressBody(address: Address): Uint8Array {
  const body = new Uint8Array(ADDRESS_BYTES);
  writeAddress(address, body, 0);
  return body;
}

export function localAddressesBody(addresses: readonly Address[]): Uint8Array {
  const list = addresses.slice(0, MAX_LOCAL_ADDRESSES);
  const body = new Uint8Array(1 + list.length * ADDRESS_BYTES);
  writeAddressList(list, body, 0);
  return body;
}

/** request id (u32, ≠ 0) | key (32). */
export function introduceRequestBody(requestId: number, key: Uint8Array): Uint8Array {
  const body = new Uint8Array(4 + KEY_BYTES);
  view(body).setUint32(0, requestId, true);
  body.set(key, 4);
  return body;
}

/** request id (u32) | key (32) | address (19) | count (u8) | count × local address (19). */
export function introductionBody(introduced: Introduced): Uint8Array {
  const local = introduced.localAddresses.slice(0, MAX_LOCAL_ADDRESSES);
  const body = new Uint8Array(4 + KEY_BYTES + ADDRESS_BYTES + 1 + local.length * ADDRESS_BYTES);
  view(body).setUint32(0, introduced.requestId, true);
  body.set(introduced.key, 4);
  writeAddress(introduced.address, body, 4 + KEY_BYTES);
  writeAddressList(local, body, 4 + KEY_BYTES + ADDRESS_BYTES);
  return body;
}

/** request id (u32, ≠ 0) | reason (u8). */
export function introduceRefusedBody(requestId: number, reason: RefusalReason): Uint8Array {
  const body = new Uint8Array(5);
  view(body).setUint32(0, requestId, true);
  body[4] = REASON_CODES[reason];
  return body;
}

/** key (32) | relay id (u32, ≠ 0). */
export function relayOfferBody(key: Uint8Array, relayId: number): Uint8Array {
  const body = new Uint8Array(KEY_BYTES + 4);
  body.set(key, 0);
  view(body).setUint32(KEY_BYTES, relayId, true);
  return body;
}

/** The message a control frame carries, or undefined if the body is malformed or the type unknown. */
export function readControl(type: number, body: Uint8Array): ControlMessage | undefined {
  switch (type) {
    case CONTROL_OBSERVED_ADDRESS: {
      const address = body.length === ADDRESS_BYTES ? readAddress(body, 0) : undefined;
      return address && { type, address };
    }
    case CONTROL_LOCAL_ADDRESSES: {
      const addresses = readAddressList(body, 0);
      return addresses && { type, addresses };
    }
    case CONTROL_INTRODUCE_REQUEST: {
      if (body.length !== 4 + KEY_BYTES) return undefined;
      const requestId = view(body).getUint32(0, true);
      return requestId === 0 ? undefined : { type, requestId, key: body.slice(4) };
    }
    case CONTROL_INTRODUCTION: {
      if (body.length < 4 + KEY_BYTES + ADDRESS_BYTES + 1) return undefined;
      const address = readAddress(body, 4 + KEY_BYTES);
      const localAddresses = readAddressList(body, 4 + KEY_BYTES + ADDRESS_BYTES);
      if (address === undefined || localAddresses === undefined) return undefined;
      return { type, requestId: view(body).getUint32(0, true), key: body.slice(4, 4 + KEY_BYTES), address, localAddresses };
    }
    case CONTROL_INTRODUCE_REFUSED: {
      if (body.length !== 5) return undefined;
      const requestId = view(body).getUint32(0, true);
      const reason = REASONS.get(body[4]!);
      return requestId === 0 || reason === undefined ? undefined : { type, requestId, reason };
    }
    case CONTROL_RELAY_OFFER: {
      if (body.length !== KEY_BYTES + 4) return undefined;
      const relayId = view(body).getUint32(KEY_BYTES, true);
      return relayId === 0 ? undefined : { type, key: body.slice(0, KEY_BYTES), relayId };
    }
    default:
      return undefined;
  }
}
