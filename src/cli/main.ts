#!/usr/bin/env node
// The `sluice` command: a file transfer between two machines behind NATs through a gateway's
// rendezvous, on the public API alone. `sluice keygen` makes a key pair, `sluice gateway` runs the
// rendezvous on a machine both can reach, `sluice receive` waits for senders, `sluice send` sends.
// Every failure is one line on stderr ("sluice: what happened. What to try.") and a non-zero status:
// 1 when something failed, 2 for a mistake on the command line, 130 when Ctrl-C interrupted a
// transfer.
import { networkInterfaces } from "node:os";
import { parseArgs } from "node:util";
import { generateKeyPair, Transport } from "../index.ts";
import { hexKey, parseKey } from "./peer.ts";
import { CliError, report } from "./terminal.ts";
import { receive, send } from "./transfer.ts";

const USAGE = `Usage:
  sluice keygen                                   a secret key and its public key (keep the secret to yourself)
  sluice gateway [--port 7000] [--host H] [--key SECRET]
                                                  the rendezvous, on a machine both peers can reach over UDP
  sluice receive --via HOST:PORT --gateway-key KEY [--key SECRET] [--out DIR] [--once]
                                                  prints this machine's key, then receives files from senders
  sluice send FILE --via HOST:PORT --gateway-key KEY --to PEERKEY [--key SECRET]
                                                  sends FILE to the receiver with key PEERKEY

Keys are 64 hex or 43 base64url characters. Without --key each run has a new key.`;

const DEFAULT_GATEWAY_PORT = 7000;

function keygen(): void {
  const { secretKey, publicKey } = generateKeyPair();
  console.log(`secret: ${hexKey(secretKey)}`);
  console.log(`public: ${hexKey(publicKey)}`);
}

/** This machine's IPv4 addresses, for the line peers copy (none where they cannot be read: Deno without --allow-sys). */
function interfaceAddresses(): string[] {
  try {
    return Object.values(networkInterfaces()).flat().filter((entry) => entry !== undefined && !entry.internal && entry.family === "IPv4").map((entry) => entry!.address);
  } catch {
    return ["<this machine's address>"];
  }
}

async function gateway(options: { port: string | undefined; host: string | undefined; key: string | undefined }): Promise<void> {
  const port = options.port === undefined ? DEFAULT_GATEWAY_PORT : Number(options.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new CliError(`--port must be a port number (0 to 65535), not ${options.port}`, 2);
  const secretKey = options.key === undefined ? undefined : parseKey(options.key, "--key");
  const short = (key: Uint8Array) => `${hexKey(key).slice(0, 12)}…`;
  // The peers connected here (a count per key: a peer that reconnects has two for a while). The
  // transport asks its introductions policy before it looks the target up (so that a requester the
  // policy refuses learns nothing of who is connected), so the log looks it up too, to say
  // "introducing" only for an introduction the transport goes on to make.
  const connected = new Map<string, number>();
  let transport: Transport;
  try {
    transport = await Transport.bind({
      host: options.host ?? "0.0.0.0",
      port,
      gateway: true,
      ...(secretKey && { secretKey }),
      log: (message) => console.error(message),
      introductions: (from, to) => {
        const target = hexKey(to);
        if (connected.has(target) && target !== hexKey(from)) console.log(`introducing ${short(from)} to ${short(to)}`);
        else console.log(`refused: ${short(from)} asked for ${short(to)}, which is not connected here`);
        return true;
      },
    });
  } catch (error) {
    throw new CliError(`cannot listen on ${options.host ?? "0.0.0.0"}:${port}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}. Try another --port`);
  }
  const { address } = transport;
  const key = hexKey(transport.publicKey);
  console.log(`Gateway key: ${key}`);
  console.log(`Listening on ${address.host}:${address.port} (UDP)`);
  const reachable = address.host === "0.0.0.0" || address.host === "::" ? interfaceAddresses() : [address.host];
  for (const host of reachable) console.log(`Peers use: --via ${host}:${address.port} --gateway-key ${key}`);
  for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, () => void transport.close().finally(() => process.exit(0)));
  for (let connection = await transport.accept(); connection !== undefined; connection = await transport.accept()) {
    const peer = hexKey(connection.remotePublicKey);
    connected.set(peer, (connected.get(peer) ?? 0) + 1);
    console.log(`peer ${short(connection.remotePublicKey)} connected from ${connection.remoteAddress.host}:${connection.remoteAddress.port}`);
    const left = () => {
      const count = connected.get(peer)! - 1;
      if (count === 0) connected.delete(peer);
      else connected.set(peer, count);
    };
    connection.whenClosed.then(left, left);
  }
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      port: { type: "string" },
      host: { type: "string" },
      key: { type: "string" },
      via: { type: "string" },
      "gateway-key": { type: "string" },
      to: { type: "string" },
      out: { type: "string" },
      once: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help === true || command === "help" || command === "--help" || command === "-h") return void console.log(USAGE);
  switch (command) {
    case "keygen":
      return keygen();
    case "gateway":
      return gateway({ port: values.port, host: values.host, key: values.key });
    case "receive":
      return receive({ via: values.via, gatewayKey: values["gateway-key"], key: values.key, out: values.out ?? ".", once: values.once === true });
    case "send":
      return send({ file: positionals[0], via: values.via, gatewayKey: values["gateway-key"], to: values.to, key: values.key });
    default:
      throw new CliError(command === undefined ? `a command is needed\n${USAGE}` : `unknown command "${command}"\n${USAGE}`, 2);
  }
}

main(process.argv.slice(2)).catch((error: unknown) => {
  if ((error as { code?: string }).code?.startsWith("ERR_PARSE_ARGS") === true) {
    console.error(`sluice: ${(error as Error).message}\n${USAGE}`);
    process.exitCode = 2;
  } else {
    process.exitCode = report(error);
  }
});
