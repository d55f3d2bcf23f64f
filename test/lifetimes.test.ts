// Ends garbage-collected without close() are closed for the user, as tokio closes them on drop.
// Run in a child process with --expose-gc so the test can make the collector run.
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { expect, test } from "vitest";

const run = promisify(execFile);

test("a dropped sender ends the stream; a dropped receiver closes the channel and frees it", async () => {
  const child = new URL("./children/dropped-ends.mjs", import.meta.url).pathname;
  const { stdout } = await run(process.execPath, ["--expose-gc", child], { cwd: new URL("..", import.meta.url).pathname });
  expect(JSON.parse(stdout)).toEqual({ senderDropped: [5, null], receiverDropped: "closed", framesBack: true });
});
