// The 19-byte address a handshake response carries: IPv4, IPv6 in any text form, and IPv4-mapped
// IPv6 (how a dual-stack socket sees an IPv4 peer) round-trip; IPv6 comes back in RFC 5952's form,
// checked against the WHATWG URL serializer (the same compression rule) on random addresses.
import fc from "fast-check";
import { expect, test } from "vitest";
import { ADDRESS_BYTES, reachableFrom, readAddress, writeAddress } from "../src/wire/address.ts";

function roundTrip(host: string, port = 4242): string | undefined {
  const bytes = new Uint8Array(ADDRESS_BYTES + 2);
  writeAddress({ host, port }, bytes, 1);
  const read = readAddress(bytes, 1);
  expect(read?.port).toBe(port);
  return read?.host;
}

test("IPv4, IPv6 in full and compressed forms, and IPv4-mapped IPv6 round-trip", () => {
  expect(roundTrip("127.0.0.1")).toBe("127.0.0.1");
  expect(roundTrip("::1")).toBe("::1");
  expect(roundTrip("0:0:0:0:0:0:0:1")).toBe("::1");
  expect(roundTrip("::")).toBe("::");
  expect(roundTrip("2001:DB8:0:0:1:0:0:1")).toBe("2001:db8::1:0:0:1"); // the first of two equal runs
  expect(roundTrip("2001:db8:0:1:1:1:1:1")).toBe("2001:db8:0:1:1:1:1:1"); // a single zero group stays
  expect(roundTrip("fe80::1%lo")).toBe("fe80::1"); // the zone index does not travel
  expect(roundTrip("::ffff:192.0.2.7")).toBe("192.0.2.7");
  expect(roundTrip("64:ff9b::192.0.2.33")).toBe("64:ff9b::c000:221");
});

test("random IPv6 addresses come back as the URL serializer writes them", () => {
  const group = fc.oneof(fc.constant(0), fc.constant(0), fc.integer({ min: 0, max: 0xffff }));
  fc.assert(fc.property(fc.array(group, { minLength: 8, maxLength: 8 }), (groups) => {
    const full = groups.map((g) => g.toString(16)).join(":");
    const mapped = groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff;
    const expected = mapped
      ? `${groups[6]! >> 8}.${groups[6]! & 0xff}.${groups[7]! >> 8}.${groups[7]! & 0xff}`
      : new URL(`http://[${full}]/`).hostname.slice(1, -1);
    expect(roundTrip(full)).toBe(expected);
  }), { numRuns: 2000, seed: 0x5952 });
});

test("reachableFrom: which addresses a socket bound to an address can send to, and in which form", () => {
  const to = (host: string) => ({ host, port: 9 });
  expect(reachableFrom("127.0.0.1", to("10.0.0.1"))).toEqual(to("10.0.0.1"));
  expect(reachableFrom("0.0.0.0", to("::ffff:10.0.0.1"))).toEqual(to("10.0.0.1")); // the mapped form, unmapped
  expect(reachableFrom("0.0.0.0", to("::1"))).toBeUndefined();
  expect(reachableFrom("::", to("10.0.0.1"))).toEqual(to("10.0.0.1")); // dual-stack: the socket maps it
  expect(reachableFrom("::", to("2001:db8::1"))).toEqual(to("2001:db8::1"));
  expect(reachableFrom("::1", to("::2"))).toEqual(to("::2"));
  expect(reachableFrom("::1", to("10.0.0.1"))).toBeUndefined();
  expect(reachableFrom("::1", to("::ffff:10.0.0.1"))).toBeUndefined();
  expect(reachableFrom("::ffff:127.0.0.1", to("10.0.0.1"))).toEqual(to("10.0.0.1")); // bound to a mapped address: a udp6 socket that talks IPv4
  expect(reachableFrom("::ffff:127.0.0.1", to("::ffff:10.0.0.1"))).toEqual(to("10.0.0.1"));
  expect(reachableFrom("::ffff:127.0.0.1", to("::1"))).toBeUndefined();
  expect(reachableFrom("127.0.0.1", to("example.invalid"))).toEqual(to("example.invalid")); // a name: resolved later
});
