// Medians, percentiles and the two output forms: a table, or with --json one object per line with
// name, unit, value, baseline, baseline_value, ratio (ratio = value / baseline_value). A row measured
// run by run may carry `values` and `baseline_values` (one per run; value and baseline_value are
// their medians): the table then shows their spread and every run's ratio, the JSON `ratios`.
export function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

export function percentile(values, p) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** Counts per second in k or M; everything else (MiB/s, ms, µs...) as a plain number. */
const format = (value, unit) => (unit.endsWith("/s") && !unit.includes("B/s") ? (value >= 1e6 ? `${(value / 1e6).toFixed(2)} M` : `${(value / 1e3).toFixed(1)} k`) : value < 10 ? value.toFixed(2) : value.toFixed(1));

/** Per-run ratios of a row that carries its runs (`values`, `baseline_values`, run by run). */
const ratiosOf = (row) => row.values?.map((value, run) => value / row.baseline_values[run]);
const spread = (values, unit) => (values ? `${format(Math.min(...values), unit)}–${format(Math.max(...values), unit)}` : "");

export function report(rows, json) {
  if (json) {
    for (const row of rows) {
      const ratios = ratiosOf(row)?.map((ratio) => Number(ratio.toFixed(3)));
      console.log(JSON.stringify({ ...row, ratio: Number((row.value / row.baseline_value).toFixed(3)), ...(ratios ? { ratios } : {}) }));
    }
    return;
  }
  // Rows measured run by run also show their spread (min–max) and the ratio of every run.
  const withRuns = rows.some((r) => r.values);
  const lines = rows.map((r) => [
    r.name, r.unit, format(r.value, r.unit), r.baseline, format(r.baseline_value, r.unit), `${(r.value / r.baseline_value).toFixed(2)}×`, r.target ?? "",
    ...(withRuns ? [spread(r.values, r.unit), spread(r.baseline_values, r.unit), ratiosOf(r)?.map((ratio) => `${ratio.toFixed(2)}×`).join(" ") ?? ""] : []),
  ]);
  const header = ["benchmark", "unit", "Sluice", "baseline (same run)", "baseline", "ratio", "target", ...(withRuns ? ["Sluice min–max", "baseline min–max", "ratio per run"] : [])];
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  const print = (cells) => console.log(`| ${cells.map((c, i) => c.padEnd(widths[i])).join(" | ")} |`);
  print(header);
  console.log(`|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`);
  for (const line of lines) print(line);
}
