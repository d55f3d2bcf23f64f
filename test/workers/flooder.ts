// Another socket, on another thread, that floods a transport. "data": `count` well-formed data
// packets for one connection id (their tags are garbage). "hostile": `count` datagrams from a seeded
// mix of random bytes, truncated headers, wrong lengths, bad tags, replays of a captured real packet
// and oversize packets. Sends in bursts of 64, waiting for each burst to leave, so the socket's own
// send queue stays bounded. Answers { sent }.
import { createSocket } from "node:dgram";
import { parentPort } from "node:worker_threads";
import { mulberry32 } from "../support/random.ts";

export interface FloodRequest {
  port: number;
  mode: "data" | "hostile";
  count: number;
  connectionId: number;
  /** A real data packet captured on the wire, for replays. */
  captured?: Uint8Array;
  seed?: number;
  /** Pause between bursts, in ms (0: only wait for the burst to leave). */
  burstGapMs?: number;
}

function dataPacket(connectionId: number, packetNumber: number, length: number, random: () => number): Uint8Array {
  const datagram = new Uint8Array(length);
  for (let i = 13; i < length; i++) datagram[i] = (random() * 256) | 0;
  const view = new DataView(datagram.buffer);
  datagram[0] = 0x02;
  view.setUint32(1, connectionId, true);
  view.setUint32(5, packetNumber, true);
  return datagram;
}

function hostile(request: FloodRequest, i: number, random: () => number): Uint8Array {
  const pick = random();
  const randomBytes = (length: number) => Uint8Array.from({ length }, () => (random() * 256) | 0);
  if (pick < 0.2) return randomBytes(1 + Math.floor(random() * 1400));
  if (pick < 0.35) return dataPacket(request.connectionId, i, 30, random).subarray(0, 1 + Math.floor(random() * 29)); // truncated
  if (pick < 0.45) { // intro or response of the wrong length, or an unknown wire version
    const d = randomBytes(2 + Math.floor(random() * 200));
    d[0] = random() < 0.5 ? 0x01 : 0x03;
    d[1] = random() < 0.7 ? 1 : 2;
    return d;
  }
  if (pick < 0.7) return dataPacket(request.connectionId, 1_000_000 + i, 30 + Math.floor(random() * 1170), random); // bad tag
  if (pick < 0.85 && request.captured) return request.captured; // replay
  if (pick < 0.92) return randomBytes(1501 + Math.floor(random() * 2000)); // oversize
  return dataPacket(1 + Math.floor(random() * 0xfffffff), i, 60, random); // unknown connection
}

parentPort!.on("message", async (request: FloodRequest) => {
  const socket = createSocket("udp4");
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
  const random = mulberry32(request.seed ?? 1);
  let sent = 0;
  while (sent < request.count) {
    const burst = Math.min(64, request.count - sent);
    await new Promise<void>((resolve) => {
      for (let b = 0; b < burst; b++, sent++) {
        const datagram = request.mode === "data" ? dataPacket(request.connectionId, sent, 100, random) : hostile(request, sent, random);
        socket.send(datagram, request.port, "127.0.0.1", b === burst - 1 ? () => resolve() : undefined);
      }
    });
    if (request.burstGapMs) await new Promise((resolve) => setTimeout(resolve, request.burstGapMs));
  }
  socket.close();
  parentPort!.postMessage({ sent });
});
parentPort!.postMessage("ready");
