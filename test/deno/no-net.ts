// bind() without the net permission, as one JSON line: the error's class, code and cause's name. Both
// socket paths must answer ERR_SLUICE_BIND_FAILED (Deno's node:dgram threw its NotCapable raw).
import { Transport } from "sluice";

try {
  await Transport.bind({ host: "127.0.0.1", log: null });
  console.log(JSON.stringify({ bound: true }));
} catch (error) {
  const { name, code, cause } = error as Error & { code?: string };
  console.log(JSON.stringify({ name, code, cause: (cause as Error | undefined)?.name }));
}
