// What the CLI shows a person: sizes and rates in binary units, a progress bar redrawn in place on a
// terminal (nothing on a pipe: the summary line says it all), and failures as one line each.

const MiB = 2 ** 20;
/** The bar is redrawn at most this often (a terminal that scrolls is slower than the transfer). */
const REDRAW_MS = 100;
const BAR_CELLS = 30;

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < MiB) return `${(bytes / 1024).toFixed(1)} KiB`;
  if (bytes < 1024 * MiB) return `${(bytes / MiB).toFixed(1)} MiB`;
  return `${(bytes / 1024 / MiB).toFixed(2)} GiB`;
}

export function formatRate(bytes: number, ms: number): string {
  return `${(bytes / MiB / Math.max(ms, 1) * 1000).toFixed(1)} MiB/s`;
}

/** A failure the CLI reports as one line ("sluice: <what>. <what to try>.") and its exit status. */
export class CliError extends Error {
  readonly status: number;

  constructor(message: string, status = 1) {
    super(message);
    this.status = status;
  }
}

/** Prints `error` as the one line a failure gets ("sluice: what happened. What to try.") and returns the exit status it calls for. */
export function report(error: unknown): number {
  if (error instanceof CliError) {
    console.error(`sluice: ${/[.?!]$/.test(error.message) ? error.message : `${error.message}.`}`);
    return error.status;
  }
  console.error(`sluice: ${(error as Error).stack ?? String(error)}`);
  return 1;
}

/** A progress bar on stderr when it is a terminal: bytes done of `total`, the rate since the start. */
export class Progress {
  readonly #total: number;
  readonly #label: string;
  readonly #startedAt = performance.now();
  readonly #live = process.stderr.isTTY === true;
  #drawnAt = -Infinity;
  #done = 0;

  constructor(label: string, total: number) {
    this.#label = label;
    this.#total = total;
  }

  get elapsedMs(): number {
    return performance.now() - this.#startedAt;
  }

  update(done: number): void {
    this.#done = done;
    const now = performance.now();
    if (!this.#live || now - this.#drawnAt < REDRAW_MS) return;
    this.#drawnAt = now;
    this.#draw();
  }

  /** The final state (drawn once more), then the line is left for what follows. */
  finish(): void {
    if (!this.#live) return;
    this.#draw();
    process.stderr.write("\n");
  }

  #draw(): void {
    const share = this.#total === 0 ? 1 : Math.min(1, this.#done / this.#total);
    const cells = Math.round(share * BAR_CELLS);
    const bar = `${"#".repeat(cells)}${".".repeat(BAR_CELLS - cells)}`;
    const line = `${this.#label} [${bar}] ${(share * 100).toFixed(0).padStart(3)}% ${formatBytes(this.#done)} of ${formatBytes(this.#total)}, ${formatRate(this.#done, this.elapsedMs)}`;
    process.stderr.write(`\r${line}\x1b[K`);
  }
}
