// A minimal responder written from the same spec: it exists so the evil peer can be checked
// against something before it meets Sluice (a disagreement with Sluice then points at Sluice or at
// the spec, not at the attacker). It follows the spec's "cheap checks first" order.
import { randomBytes } from "node:crypto";
import { EvilSession, EvilSocket, randomConnectionId, type Datagram } from "./evil-peer.ts";
import {
  cookieFor,
  dataConnectionId,
  generateKeyPair,
  mac1Valid,
  mac2Valid,
  readIntro,
  writeCookie,
  writeResponse,
  type KeyPair,
} from "./noise.ts";
import { INTRO, PROTOCOL_3_0, packetKind } from "./wire.ts";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

export class MiniResponder {
  readonly socket: EvilSocket;
  readonly staticKey: KeyPair;
  readonly sessions = new Map<number, EvilSession>();
  readonly drops = { malformed: 0, badMac: 0, decryptFailed: 0, replayed: 0, versionMismatch: 0 };
  cookiesSent = 0;
  /** Under load: every intro needs a valid mac2. */
  underLoad = false;
  readonly #cookieSecret = randomBytes(32);
  readonly #newest = new Map<string, number>();

  private constructor(socket: EvilSocket, staticKey: KeyPair) {
    this.socket = socket;
    this.staticKey = staticKey;
    socket.handler = (d) => this.#handle(d);
  }

  static async bind(host = "127.0.0.1", staticKey = generateKeyPair()): Promise<MiniResponder> {
    return new MiniResponder(await EvilSocket.bind(host), staticKey);
  }

  #handle(d: Datagram): void {
    const kind = packetKind(d.bytes);
    if (kind === "data") {
      this.sessions.get(dataConnectionId(d.bytes))?.handle(d);
      return;
    }
    if (kind !== "intro") {
      this.drops.malformed++;
      return;
    }
    if (this.underLoad && !mac2Valid(d.bytes, cookieFor(this.#cookieSecret, d.from))) {
      if (!mac1Valid(d.bytes, this.staticKey.public, INTRO.mac1)) this.drops.badMac++; // mac1 comes first
      else {
        this.cookiesSent++;
        this.socket.send(writeCookie(d.bytes, cookieFor(this.#cookieSecret, d.from), this.staticKey.public), d.from);
      }
      return;
    }
    const intro = readIntro(d.bytes, this.staticKey);
    if (typeof intro === "string") {
      this.drops[intro]++;
      return;
    }
    const key = hex(intro.initiatorStatic);
    if ((this.#newest.get(key) ?? -1) >= intro.timestampUs) {
      this.drops.replayed++;
      return;
    }
    this.#newest.set(key, intro.timestampUs);
    const ok = intro.version.major === 3;
    if (!ok) this.drops.versionMismatch++;
    const responderId = ok ? randomConnectionId() : 0;
    const { packet, secrets } = writeResponse(intro, {
      status: ok ? 0 : 1,
      version: PROTOCOL_3_0,
      responderId,
      observed: d.from,
    });
    if (ok) {
      this.sessions.set(
        responderId,
        new EvilSession(this.socket, d.from, { role: "responder", localId: responderId, remoteId: intro.senderId, secrets }),
      );
    }
    this.socket.send(packet, d.from);
  }

  close(): Promise<void> {
    return this.socket.close();
  }
}
