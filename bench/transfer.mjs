// Reliable delivery on loopback, both ends in this process (one event loop) for every contender:
//  - a 256 MiB stream: throughput and CPU seconds per GiB (process.cpuUsage, both ends together);
//  - 1 KiB request/response round trips, sequential: p50 and p99.
// Contenders: Sluice (ChaCha20-Poly1305 in wasm, its protocol in JavaScript, over node:dgram),
// udx-native (libudx: reliable streams with BBR, unencrypted, native C), and raw node:dgram (no
// reliability at all: its "stream" is a blast of 1200-byte datagrams, counting what arrives).
import { createSocket } from "node:dgram";
import UDX from "udx-native";
import { connectedPair } from "./lib/pair.mjs";

const CHUNK_BYTES = 256 * 1024;
const GIB = 2 ** 30;

function measure() {
  return { wall: performance.now(), cpu: process.cpuUsage() };
}

function finish(mark, bytes) {
  const seconds = (performance.now() - mark.wall) / 1000;
  const cpu = process.cpuUsage(mark.cpu);
  return { bytesPerSecond: bytes / seconds, cpuSecondsPerGiB: (cpu.user + cpu.system) / 1e6 / (bytes / GIB) };
}

export async function sluiceStream(totalBytes) {
  const { toGateway: near, atGateway: far, close } = await connectedPair();
  const chunk = new Uint8Array(CHUNK_BYTES).fill(7);
  const mark = measure();
  const writing = (async () => {
    const writer = near.openStream().getWriter();
    for (let at = 0; at < totalBytes; at += CHUNK_BYTES) await writer.write(chunk);
    await writer.close();
  })();
  const reader = (await far.acceptStream()).getReader();
  let received = 0;
  for (let read = await reader.read(); !read.done; read = await reader.read()) received += read.value.length;
  await writing;
  const result = finish(mark, received);
  await close();
  return result;
}

export async function sluiceRoundTrips(count, bytes) {
  const { toGateway: near, atGateway: far, close } = await connectedPair();
  const echo = (async () => {
    for await (const message of far) await far.send(message);
  })();
  const request = new Uint8Array(bytes).fill(1);
  const times = [];
  for (let i = 0; i < count; i++) {
    const started = performance.now();
    await near.send(request);
    await near.recv();
    times.push(performance.now() - started);
  }
  await close();
  await echo.catch(() => {});
  return times;
}

function udxPair() {
  const udx = new UDX();
  const sockets = [udx.createSocket(), udx.createSocket()];
  sockets[0].bind(0, "127.0.0.1");
  sockets[1].bind(0, "127.0.0.1");
  const near = udx.createStream(1);
  const far = udx.createStream(2);
  near.connect(sockets[0], 2, sockets[1].address().port, "127.0.0.1");
  far.connect(sockets[1], 1, sockets[0].address().port, "127.0.0.1");
  return {
    near, far,
    close: async () => {
      near.destroy();
      far.destroy();
      await Promise.all(sockets.map((socket) => socket.close()));
    },
  };
}

export async function udxStream(totalBytes) {
  const { near, far, close } = udxPair();
  const chunk = Buffer.alloc(CHUNK_BYTES, 7);
  const mark = measure();
  let received = 0;
  const done = new Promise((resolve) => far.on("data", (data) => {
    received += data.length;
    if (received >= totalBytes) resolve();
  }));
  for (let at = 0; at < totalBytes; at += CHUNK_BYTES) {
    if (!near.write(chunk)) await new Promise((resolve) => near.once("drain", resolve));
  }
  await done;
  const result = finish(mark, received);
  await close();
  return result;
}

export async function udxRoundTrips(count, bytes) {
  const { near, far, close } = udxPair();
  far.on("data", (data) => far.write(data));
  const request = Buffer.alloc(bytes, 1);
  const times = [];
  for (let i = 0; i < count; i++) {
    const started = performance.now();
    let got = 0;
    await new Promise((resolve) => {
      const onData = (data) => {
        got += data.length;
        if (got < bytes) return;
        near.off("data", onData);
        resolve();
      };
      near.on("data", onData);
      near.write(request);
    });
    times.push(performance.now() - started);
  }
  await close();
  return times;
}

async function dgramPair() {
  const sockets = [createSocket({ type: "udp4", recvBufferSize: 4 << 20 }), createSocket({ type: "udp4", recvBufferSize: 4 << 20 })];
  await Promise.all(sockets.map((socket) => new Promise((resolve) => socket.bind(0, "127.0.0.1", resolve))));
  return { sockets, close: () => sockets.forEach((socket) => socket.close()) };
}

/** No reliability: 1200-byte datagrams sent in bursts of 64 per event-loop turn; counts what arrives. */
export async function dgramStream(totalBytes) {
  const { sockets, close } = await dgramPair();
  const datagram = Buffer.alloc(1200, 7);
  const port = sockets[1].address().port;
  let received = 0;
  let last = performance.now();
  sockets[1].on("message", (message) => {
    received += message.length;
    last = performance.now();
  });
  const mark = measure();
  for (let sent = 0; sent < totalBytes; sent += 64 * datagram.length) {
    for (let i = 0; i < 64; i++) sockets[0].send(datagram, port, "127.0.0.1");
    await new Promise((resolve) => setImmediate(resolve));
  }
  while (performance.now() - last < 100) await new Promise((resolve) => setTimeout(resolve, 20));
  const result = finish(mark, received);
  result.bytesPerSecond = received / ((last - mark.wall) / 1000);
  close();
  return result;
}

export async function dgramRoundTrips(count, bytes) {
  const { sockets, close } = await dgramPair();
  sockets[1].on("message", (message, from) => sockets[1].send(message, from.port, from.address));
  const request = Buffer.alloc(bytes, 1);
  const port = sockets[1].address().port;
  const times = [];
  for (let i = 0; i < count; i++) {
    const started = performance.now();
    await new Promise((resolve) => {
      sockets[0].once("message", resolve);
      sockets[0].send(request, port, "127.0.0.1");
    });
    times.push(performance.now() - started);
  }
  close();
  return times;
}
