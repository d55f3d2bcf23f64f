// Request/response over a child process's IPC channel: the parent calls `call(op, args)`, the child
// answers from `serve({ op: handler })`. One answer per request, matched by id; a handler's error
// comes back as a rejection with its message, and no answer within CALL_TIMEOUT_MS as one too (a
// benchmark must end: seen, a client process deadlocked inside node:crypto, see docs/benchmarks.md).

const CALL_TIMEOUT_MS = 10 * 60 * 1000;

/** The child's side: answers every request with its handler's result. */
export function serve(handlers) {
  process.on("message", async ({ id, op, args }) => {
    try {
      process.send({ id, result: await handlers[op](args) });
    } catch (error) {
      process.send({ id, error: error instanceof Error ? error.message : String(error) });
    }
  });
  process.send({ ready: true });
}

/** The parent's side: resolves once the child is ready; answers { call, child }. */
export async function connectTo(child) {
  const pending = new Map();
  let nextId = 0;
  await new Promise((resolve, reject) => {
    child.once("message", resolve);
    child.once("exit", (code) => reject(new Error(`a benchmark child exited before it was ready (code ${code})`)));
  });
  child.on("message", ({ id, result, error }) => {
    const settle = pending.get(id);
    pending.delete(id);
    if (error === undefined) settle?.resolve(result);
    else settle?.reject(new Error(error));
  });
  child.once("exit", (code) => {
    for (const settle of pending.values()) settle.reject(new Error(`a benchmark child exited (code ${code})`));
    pending.clear();
  });
  const call = (op, args = {}) => new Promise((resolve, reject) => {
    const id = nextId++;
    const timer = setTimeout(() => {
      pending.delete(id);
      reject(new Error(`no answer to ${op} from process ${child.pid} within ${CALL_TIMEOUT_MS / 1000} s`));
    }, CALL_TIMEOUT_MS);
    const settle = (then) => (value) => {
      clearTimeout(timer);
      then(value);
    };
    pending.set(id, { resolve: settle(resolve), reject: settle(reject) });
    child.send({ id, op, args });
  });
  return { call, child };
}
