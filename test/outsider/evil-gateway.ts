// An evil gateway, written from the wire spec: a responder whose RESPONSE says "gateway" (status
// bit 4), so that a Sluice node connected to it acts on its introductions and relay offers. It can
// also play the introduced peer itself (a second static key) over a relay it offered: it unwraps
// the node's RELAYs, answers the intro inside as that peer and wraps its answers back.
import { EvilSession, EvilSocket, randomConnectionId, type Datagram } from "./evil-peer.ts";
import { dataConnectionId, generateKeyPair, readIntro, writeResponse, type KeyPair } from "./noise.ts";
import { PROTOCOL_3_0, elicitsAck, packetKind, readRelay, relayPacket, type Address, type Frame } from "./wire.ts";

const GATEWAY_STATUS = 0x10;

export class EvilGateway {
  readonly socket: EvilSocket;
  readonly staticKey: KeyPair = generateKeyPair();
  /** The key of the peer this gateway plays over its relay. */
  readonly relayedKey: KeyPair = generateKeyPair();
  /** Connections to this gateway, by our connection id. */
  readonly sessions = new Map<number, EvilSession>();
  /** The relayed peer's connection (once the node's intro through the relay opened). */
  relayed: EvilSession | undefined;
  /** RELAYs the node sent us, unwrapped. */
  readonly relaysReceived: Datagram[] = [];
  /** The relay id we offered the node, by which we wrap what the relayed peer sends. */
  relayId = 0;
  readonly #sink: EvilSocket;

  private constructor(socket: EvilSocket, sink: EvilSocket) {
    this.socket = socket;
    this.#sink = sink;
    socket.handler = (d) => this.#handle(d);
    sink.handler = () => {};
  }

  static async bind(host = "127.0.0.5"): Promise<EvilGateway> {
    return new EvilGateway(await EvilSocket.bind(host), await EvilSocket.bind(host));
  }

  /** The first connection made to this gateway. */
  async session(timeoutMs = 3000): Promise<EvilSession> {
    const deadline = performance.now() + timeoutMs;
    while (this.sessions.size === 0) {
      if (performance.now() > deadline) throw new Error("nobody connected to the evil gateway");
      await new Promise((r) => setTimeout(r, 10));
    }
    return this.sessions.values().next().value!;
  }

  /** Sends `frames` as the relayed peer, wrapped in a RELAY to `to`. */
  sendRelayed(frames: Frame[], to: Address): void {
    this.socket.send(relayPacket(this.relayId, this.relayed!.seal(frames)), to);
  }

  #handle(d: Datagram): void {
    const relay = readRelay(d.bytes);
    if (relay !== undefined) {
      this.relaysReceived.push({ ...d, bytes: relay.inner });
      this.#handleRelayed({ ...d, bytes: relay.inner });
      return;
    }
    const kind = packetKind(d.bytes);
    if (kind === "data") this.sessions.get(dataConnectionId(d.bytes))?.handle(d);
    else if (kind === "intro") {
      const session = this.#respond(d, this.staticKey, GATEWAY_STATUS, (response) => this.socket.send(response, d.from));
      if (session !== undefined) this.sessions.set(session.localId, session);
    }
  }

  /** The relayed peer: answers the intro, opens data, acknowledges and answers challenges, all wrapped. */
  #handleRelayed(d: Datagram): void {
    const kind = packetKind(d.bytes);
    if (kind === "intro" && this.relayed === undefined) {
      this.relayed = this.#respond(d, this.relayedKey, 0, (response) => this.socket.send(relayPacket(this.relayId, response), d.from));
      if (this.relayed !== undefined) {
        // What the session would send unwrapped goes to a sink: only wrapped packets reach the node.
        this.relayed.remote = this.#sink.address;
        this.relayed.autoAck = false;
        this.relayed.answerChallenges = false;
      }
      return;
    }
    const session = this.relayed;
    if (kind !== "data" || session === undefined || !session.handle(d)) return;
    const frames = session.received[session.received.length - 1].frames;
    const answers: Frame[] = frames.flatMap((f): Frame[] =>
      f.type === "confirm" ? [{ type: "confirmAck" }] : f.type === "pathChallenge" ? [{ type: "pathResponse", data: f.data }] : [],
    );
    if (elicitsAck(frames) && !frames.some((f) => f.type === "confirm")) answers.push(session.ackFrame());
    if (answers.length > 0) this.sendRelayed(answers, d.from);
  }

  #respond(d: Datagram, key: KeyPair, status: number, send: (response: Uint8Array) => void): EvilSession | undefined {
    const intro = readIntro(d.bytes, key);
    if (typeof intro === "string") return undefined;
    const responderId = randomConnectionId();
    const { packet, secrets } = writeResponse(intro, { status, version: PROTOCOL_3_0, responderId, observed: d.from });
    send(packet);
    return new EvilSession(this.socket, d.from, { role: "responder", localId: responderId, remoteId: intro.senderId, secrets });
  }

  close(): Promise<unknown> {
    return Promise.all([this.socket.close(), this.#sink.close()]);
  }
}
