/**
 * docs/operations.md stays true to the code: every broker option appears in its limits table
 * with its flag, environment variable and default, and every error code it tells operators
 * about exists.
 */
import { describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as path from "node:path";
import { configSchema, envName, flagName } from "../../src/config.ts";
import { ERROR_CODES } from "../../src/errors.ts";

const doc = fs.readFileSync(path.resolve(import.meta.dir, "../../docs/operations.md"), "utf8");

describe("docs/operations.md", () => {
  test("lists every broker option with its flag, environment variable and default", () => {
    const defaults = configSchema.parse({}) as Record<string, unknown>;
    for (const key of Object.keys(configSchema.shape)) {
      const flag = flagName(key);
      const env = envName(key);
      const row = doc.split("\n").find((line) => line.startsWith(`| \`${flag}\` |`));
      expect(row, `row for ${flag}`).toBeDefined();
      expect(row).toContain(`\`${env}\``);
      const value = defaults[key];
      // An option with no fixed default (httpPort: derived from port) says what it derives from.
      if (value === undefined) expect(row).toMatch(/\| [^|]*\+ 1[^|]* \|/);
      else expect(row).toContain(typeof value === "string" ? `\`${value}\`` : String(value));
    }
  });

  test("names only error codes that exist", () => {
    for (const code of doc.match(/\b[A-Z]+(?:_[A-Z]+)+\b/g) ?? []) {
      if (code.startsWith("RUNNEL_") || code.startsWith("MIMALLOC_") || code === "NO_COLOR") continue; // environment variables
      expect(Object.hasOwn(ERROR_CODES, code), code).toBe(true);
    }
  });
});
