/**
 * @module format/crc32c
 * CRC-32C (Castagnoli, reflected polynomial 0x82F63B78): the checksum of Kafka's record batch
 * v2 (magic 2), over bytes [attributes, end). Bun's built-in hash offers only CRC-32 (IEEE).
 *
 * Two implementations, one answer: the native addon @node-rs/crc32 (an optional dependency) when
 * it is installed, else a table-driven loop here, slicing by 8 (eight 256-entry tables, eight
 * bytes per step). Why the addon: the JS loop measured 300-1,000 MiB/s on the 2-core box against
 * 2,000-2,500 MiB/s for the addon at 64 KiB-1 MiB, and it is paid twice per produced Kafka batch
 * (client and broker): `runnel bench kafka` at 1 KiB went from 30-38% of native produce to
 * 54-64% with the addon (docs/kafka.md, "Measured"). Why optional: a build without it (a
 * platform it lacks, an install with --omit=optional) still works. `bun build --compile` embeds
 * the addon when it is installed and builds without it when it is not (both checked). The addon
 * is used only after it gives the known check value, so a broken one cannot corrupt checksums.
 */

/** The native CRC-32C, or null when @node-rs/crc32 is not installed or answers wrongly. */
function loadNativeCrc32c(): ((bytes: Uint8Array) => number) | null {
  try {
    // require, not import: a missing optional package is a caught error, not a failed module.
    const addon = require("@node-rs/crc32") as { crc32c?: unknown };
    if (typeof addon.crc32c !== "function") return null;
    const native = addon.crc32c as (bytes: Uint8Array) => number;
    return native(CHECK_INPUT) >>> 0 === CHECK_VALUE ? native : null;
  } catch {
    return null;
  }
}

/** CRC-32C of the ASCII digits "123456789" (the catalogue's check value). */
const CHECK_INPUT = new TextEncoder().encode("123456789");
const CHECK_VALUE = 0xe3069283;

const POLYNOMIAL = 0x82f63b78;

/** TABLES[k][b]: the CRC of byte b followed by k zero bytes (slicing-by-8). */
const TABLES: Int32Array[] = buildTables();

function buildTables(): Int32Array[] {
  const tables: Int32Array[] = [];
  const first = new Int32Array(256);
  for (let byte = 0; byte < 256; byte++) {
    let crc = byte;
    for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ POLYNOMIAL : crc >>> 1;
    first[byte] = crc;
  }
  tables.push(first);
  for (let k = 1; k < 8; k++) {
    const previous = tables[k - 1] as Int32Array;
    const table = new Int32Array(256);
    for (let byte = 0; byte < 256; byte++) {
      const value = previous[byte] as number;
      table[byte] = (value >>> 8) ^ (first[value & 0xff] as number);
    }
    tables.push(table);
  }
  return tables;
}

const NATIVE_CRC32C = loadNativeCrc32c();

/** Which implementation crc32c uses (for the bench's report). */
export const CRC32C_IMPLEMENTATION: "@node-rs/crc32" | "js" = NATIVE_CRC32C === null ? "js" : "@node-rs/crc32";

/** CRC-32C of `bytes`, as an unsigned 32-bit number. */
export function crc32c(bytes: Uint8Array): number {
  return NATIVE_CRC32C === null ? crc32cJs(bytes) : NATIVE_CRC32C(bytes) >>> 0;
}

/** The table-driven CRC-32C (the fallback; tests hold the addon against it). */
export function crc32cJs(bytes: Uint8Array): number {
  const [t0, t1, t2, t3, t4, t5, t6, t7] = TABLES as [Int32Array, Int32Array, Int32Array, Int32Array, Int32Array, Int32Array, Int32Array, Int32Array];
  let crc = -1;
  let position = 0;
  const length = bytes.length;
  const fastEnd = length - (length % 8);
  while (position < fastEnd) {
    const low = crc ^ ((bytes[position] as number) | ((bytes[position + 1] as number) << 8) | ((bytes[position + 2] as number) << 16) | ((bytes[position + 3] as number) << 24));
    crc =
      (t7[low & 0xff] as number) ^
      (t6[(low >>> 8) & 0xff] as number) ^
      (t5[(low >>> 16) & 0xff] as number) ^
      (t4[low >>> 24] as number) ^
      (t3[bytes[position + 4] as number] as number) ^
      (t2[bytes[position + 5] as number] as number) ^
      (t1[bytes[position + 6] as number] as number) ^
      (t0[bytes[position + 7] as number] as number);
    position += 8;
  }
  while (position < length) {
    crc = (t0[(crc ^ (bytes[position] as number)) & 0xff] as number) ^ (crc >>> 8);
    position++;
  }
  return (crc ^ -1) >>> 0;
}
