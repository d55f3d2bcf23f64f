// The README's runnable code: every ```ts block whose info string says `runnable`, named by the
// section it is in. test/readme.test.ts runs each; test/package.test.ts type-checks each as a
// consumer's file.
import { readFileSync } from "node:fs";

export interface RunnableBlock {
  /** The heading of the section the block is in ("Transport tour"). */
  section: string;
  /** A file name for it: the section in kebab case ("transport-tour"). */
  name: string;
  code: string;
}

export function runnableBlocks(readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8")): RunnableBlock[] {
  const blocks: RunnableBlock[] = [];
  let section = "";
  for (const match of readme.matchAll(/^#{1,6} (.+)$|^```ts runnable\n([\s\S]*?)^```$/gm)) {
    if (match[1] !== undefined) section = match[1].trim();
    else blocks.push({ section, name: section.toLowerCase().replace(/[^a-z0-9]+/g, "-"), code: match[2]! });
  }
  return blocks;
}
