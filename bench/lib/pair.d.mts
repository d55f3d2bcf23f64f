// Types of pair.mjs, for the TypeScript benches (bench/deno).
import type { Connection, Transport, TransportOptions } from "sluice";

export function connectedPair(gatewayOptions?: TransportOptions): Promise<{
  gateway: Transport;
  joiner: Transport;
  toGateway: Connection;
  atGateway: Connection;
  close: () => Promise<unknown>;
}>;
