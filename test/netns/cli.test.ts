// The `sluice` command end to end through the kernel's NAT: keygen, a gateway on the public segment,
// `receive` behind one cone NAT, `send` behind another; the file arrives with the same SHA-256 and
// both exit 0. Then a peer the gateway does not know: one line and status 1 (the other failures are
// in test/cli.test.ts, on loopback).
import { createHash, randomFillSync } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect, it } from "vitest";
import { runCli } from "../support/cli.ts";
import type { Host } from "./support/bed.ts";
import { CONE, describeNetns, figure, MiB, ms, useBed } from "./support/scenario.ts";

const FILE_BYTES = 4 * MiB;

const sluice = (host: Host, args: string[]) => runCli(args, ["ip", "netns", "exec", host.namespace]);

describeNetns("the sluice command through two cone NATs", () => {
  const bed = useBed();

  it("keygen, gateway, receive, send: a 4 MiB file arrives with the same SHA-256, both exit 0; an unknown peer fails in one line", async () => {
    const internet = await bed().internet();
    const gatewayHost = await bed().host("gateway", internet);
    const [natA, natB] = [await bed().nat("natA", internet, CONE), await bed().nat("natB", internet, CONE)];
    const [hostA, hostB] = await Promise.all([bed().host("a", natA.lan), bed().host("b", natB.lan)]);
    const dir = await mkdtemp(join(tmpdir(), "sluice-cli-"));
    try {
      const keygen = sluice(gatewayHost, ["keygen"]);
      expect(await keygen.exited).toBe(0);
      const [, secret, publicKey] = /secret: ([0-9a-f]{64})\npublic: ([0-9a-f]{64})\n/.exec(keygen.stdout) ?? [];
      expect(publicKey).toBeDefined();

      const gateway = sluice(gatewayHost, ["gateway", "--port", "7000", "--key", secret!]);
      expect(await gateway.line(/Gateway key: ([0-9a-f]{64})/)).toBe(publicKey);
      await gateway.line(/Listening on 0\.0\.0\.0:7000/);
      const via = `${gatewayHost.address}:7000`;

      const out = join(dir, "out");
      await mkdir(out);
      const receiver = sluice(hostA, ["receive", "--via", via, "--gateway-key", publicKey!, "--out", out, "--once"]);
      const receiverKey = await receiver.line(/Your key: ([0-9a-f]{64})/);
      await receiver.line(/it sees this machine at 198\.18\.0\.\d+:\d+/);

      const file = join(dir, "payload.bin");
      const bytes = randomFillSync(new Uint8Array(FILE_BYTES));
      await writeFile(file, bytes);
      const startedAt = performance.now();
      const sender = sluice(hostB, ["send", file, "--via", via, "--gateway-key", publicKey!, "--to", receiverKey]);
      const [sent, received] = await Promise.all([sender.exited, receiver.exited]);
      const elapsed = performance.now() - startedAt;
      expect({ sent, stderr: sender.stderr }).toEqual({ sent: 0, stderr: "" });
      expect({ received, stderr: receiver.stderr }).toEqual({ received: 0, stderr: "" });
      const sha256 = createHash("sha256").update(bytes).digest("hex");
      expect(createHash("sha256").update(await readFile(join(out, "payload.bin"))).digest("hex")).toBe(sha256);
      expect(sender.stdout).toContain(`SHA-256 ${sha256} checked by the receiver`);
      expect(receiver.stdout).toContain(`SHA-256 ${sha256} matches the sender's`);
      expect(sender.stdout).toMatch(/Connected to the receiver at 198\.18\.0\.\d+:\d+ \(directly\)/);
      expect(gateway.stdout).toMatch(/introducing [0-9a-f]{12}… to [0-9a-f]{12}…/);
      figure("CLI, two cone NATs", `sluice send of 4 MiB: both exited 0 within ${ms(elapsed)} of starting the sender (process start, gateway connect, introduction, punch, transfer, check); ${/Sent [^:]+: (.*);/.exec(sender.stdout)?.[1]}`);

      // A key the gateway holds no connection with: at once, one line, status 1.
      const unknown = sluice(hostB, ["send", file, "--via", via, "--gateway-key", publicKey!, "--to", "ab".repeat(32)]);
      expect(await unknown.exited).toBe(1);
      expect(unknown.stderr).toMatch(/^sluice: the gateway knows no peer with key (ab){32}\. Start `sluice receive` .*\n$/);

      gateway.child.kill("SIGINT");
      expect(await gateway.exited).toBe(0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 40_000);
});
