// What kind of NAT this node is behind, from what gateways observed of it (as hyperswarm's
// holepunchable() does): a port kept for every destination is a cone (endpoint-independent mapping:
// hole punching works); a new port per destination is symmetric (punching works only towards a cone,
// and a relay may be needed); seen at its own address it is open. One gateway cannot tell a cone from
// a symmetric NAT.
import { networkInterfaces } from "node:os";
import { addressKey, type Address } from "../wire/address.ts";

export type NatType = "open" | "cone" | "symmetric" | "unknown";

/** Gateways whose view of us is remembered (the most recent). */
const MAX_VIEWS = 16;

export class NatObservations {
  /** Gateway address key → how it saw us, most recent last. */
  readonly #views = new Map<string, Address>();

  /** The gateway at `gateway` saw us at `observed`. */
  record(gateway: Address, observed: Address): void {
    const key = addressKey(gateway.host, gateway.port);
    this.#views.delete(key);
    this.#views.set(key, { host: observed.host, port: observed.port });
    if (this.#views.size > MAX_VIEWS) this.#views.delete(this.#views.keys().next().value!);
  }

  /** The NAT type these views show, for a socket bound at `local`. */
  natType(local: Address): NatType {
    const views = [...this.#views.values()];
    if (views.length === 0) return "unknown";
    const own = new Set(Object.values(networkInterfaces()).flat().map((entry) => entry?.address));
    if (views.some((view) => view.port === local.port && (view.host === local.host || own.has(view.host)))) return "open";
    if (views.length < 2) return "unknown";
    return views.every((view) => view.port === views[0]!.port && view.host === views[0]!.host) ? "cone" : "symmetric";
  }
}
