/**
 * CRC-32C has two implementations (format/crc32c.ts): the @node-rs/crc32 addon when installed,
 * and the table-driven loop. Both must give the same checksum for every input, or batches written
 * by one build would be refused by another.
 */
import { expect, test } from "bun:test";
import { CRC32C_IMPLEMENTATION, crc32c, crc32cJs } from "../../src/format/crc32c.ts";
import { prng } from "../support/prng.ts";

test("crc32c (addon or loop) and the table-driven loop agree on the check value and on random inputs of every length up to 4 KiB", () => {
  expect(["@node-rs/crc32", "js"]).toContain(CRC32C_IMPLEMENTATION);
  const check = new TextEncoder().encode("123456789");
  expect(crc32cJs(check)).toBe(0xe3069283);
  expect(crc32c(check)).toBe(0xe3069283);
  const random = prng(11);
  const bytes = new Uint8Array(4096).map(() => Math.floor(random() * 256));
  for (let length = 0; length <= bytes.length; length += 1 + (length >> 4)) {
    expect(crc32c(bytes.subarray(0, length))).toBe(crc32cJs(bytes.subarray(0, length)));
  }
  // Views at odd offsets (a batch inside a larger frame) too.
  expect(crc32c(bytes.subarray(3, 1003))).toBe(crc32cJs(bytes.subarray(3, 1003)));
});
