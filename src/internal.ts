// Test and benchmark seams, published as "sluice/internal" and never by "sluice": they reach inside a
// Transport or a Connection, so the public types stay free of them. dist/index.js and
// dist/internal.js share one chunk (scripts/build.mjs), so a seam works on objects made through
// "sluice". Not an API: it changes whenever the tests need it to.
import { invalidArgValue } from "./errors/validate.ts";
import { Arena } from "./memory/arena.ts";
import { INTRO_MAC1 } from "./wire/constants.ts";
import { PROTOCOL_VERSION } from "./wire/version.ts";
import { CoreCrypto } from "./handshake/core-crypto.ts";
import { mac1Key, stampMacs } from "./handshake/macs.ts";
import { writeIntro } from "./handshake/noise.ts";
import { generateKeyPair } from "./handshake/primitives.ts";
import { nextTimestamp } from "./handshake/replay.ts";
import type { Connection } from "./transport/connection.ts";
import { driverOf } from "./transport/connection.ts";
import type { RouteOutcome } from "./transport/listener.ts";
import type { TransportOptions, TransportSeams } from "./transport/options.ts";
import type { DatagramVisitor } from "./transport/session-driver.ts";
import { bindWithSeams, listenerOf, relaysOf, type Transport } from "./transport/transport.ts";
import type { Address } from "./wire/address.ts";

export type { TransportSeams };

/**
 * `count` genuine intros to the holder of `publicKey`, each from a fresh key of its own, with a valid
 * mac1 and no cookie: what a stranger who knows the key can send (for the strangers benchmark).
 */
export function introsForBenchmark(publicKey: Uint8Array, count: number): Uint8Array[] {
  const arena = Arena.create({ bytes: 1 << 20 });
  const crypto = new CoreCrypto(arena);
  const key = mac1Key(crypto, publicKey);
  const intros: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const state = writeIntro(crypto, generateKeyPair(), publicKey, { senderId: i + 1, timestamp: nextTimestamp(Date.now()), version: PROTOCOL_VERSION });
    if (state === undefined) throw invalidArgValue("publicKey", "(a low-order point)", "is not a usable X25519 public key", introsForBenchmark);
    stampMacs(crypto, state.intro, INTRO_MAC1, key, undefined);
    intros.push(state.intro);
  }
  crypto.dispose();
  arena.forget();
  return intros;
}
export { openNodeSocket, type SocketFactory } from "./transport/udp-socket.ts";
/** The header that sends a datagram through relay `relay` of the gateway it goes to (the relay benchmark's raw forwarding baseline). */
export { relayHeader } from "./transport/relays.ts";

/**
 * Transport.bind() with seams: `socket` replaces the UDP socket (a seeded fault injector in front of a
 * real one), connections to peers for which `stallConsumersOf` answers true never consume their
 * inbound queue (a stalled consumer, for the never-blocks tests), and `keyPhaseLimits` makes keys
 * move on within a short transfer, and `lookup` stands in for dns.lookup.
 */
export function bindTransport(options: TransportOptions & TransportSeams = {}): Promise<Transport> {
  const { socket, stallConsumersOf, keyPhaseLimits, lookup, ...rest } = options;
  return bindWithSeams(rest, { socket, stallConsumersOf, keyPhaseLimits, lookup });
}

/** Turns on `arena`'s queue reserves rule (Arena.reserveQueues): what a transport does to its own arena. */
export function reserveQueues(arena: Arena, reservePackets: number, guardFrames: number): void {
  arena.reserveQueues(reservePackets, guardFrames);
}

/** Gateway side: a relay between two of `gateway`'s connections; the relay id each peer sends with. */
export function openRelay(gateway: Transport, a: Connection, b: Connection): { a: number; b: number } {
  return relaysOf(gateway).open(driverOf(a), driverOf(b), performance.now());
}

/** Peer side: `transport` accepts relay `id` of the gateway at `gateway`; answers the address to connect to. */
export function grantRelay(transport: Transport, gateway: Address, id: number): Address {
  return relaysOf(transport).grant(gateway, id);
}

/** How many key updates `connection` made or followed (its send key phase). */
export function keyPhaseOf(connection: Connection): number {
  return driverOf(connection).keyPhase;
}

/** How many addressChanges() iterators of `connection` are still subscribed (not yet ended). */
export function addressChangeSubscribersOf(connection: Connection): number {
  return driverOf(connection).addressChanges.subscribers;
}

/** Routes one datagram through the transport's listener, synchronously, as if its socket had received it. */
export function routeDatagram(transport: Transport, datagram: Uint8Array, host: string, port: number): RouteOutcome {
  return listenerOf(transport).route(datagram, host, port);
}

/**
 * The connection's queued datagrams go to `visit` instead of to its Session: unopened (the listener's
 * cost alone), or with `opened`, as plaintexts after the replay window and the AEAD.
 */
export function bypassForBenchmark(connection: Connection, visit: DatagramVisitor, { opened = false } = {}): void {
  driverOf(connection).bypassForBenchmark(visit, opened);
}

/**
 * `count` data packets sealed as `connection` would send them, each carrying `plaintext`, back to back
 * in one buffer (each plaintext.length + 29 bytes), with packet numbers never used by its Session.
 */
export function sealForBenchmark(connection: Connection, plaintext: Uint8Array, count: number): Uint8Array {
  return driverOf(connection).sealForBenchmark(plaintext, count);
}
