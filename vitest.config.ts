import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/support/bundle-workers.ts"],
    reporters: ["default", "./test/support/summary-reporter.ts"],
    testTimeout: 30_000,
    // Two cores: timing-sensitive files (CPU while parked, never-blocks budgets) must not share them.
    fileParallelism: false,
  },
});
