/**
 * @module format/crc32c
 * CRC-32C (Castagnoli, reflected polynomial 0x82F63B78): the checksum of Kafka's record batch
 * v2 (magic 2), over bytes [attributes, end). Bun's built-in hash offers only CRC-32 (IEEE), so
 * this is a table-driven loop, slicing by 8 (eight 256-entry tables, eight bytes per step).
 *
 * Why JS and not a native addon (@node-rs/crc32): a .node addon is a file beside the program
 * that `bun build --compile` must embed and load at run time, one more thing to break for a
 * checksum that runs once per produced Kafka batch. Measured figures are in docs/kafka.md.
 */

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

/** CRC-32C of `bytes`, as an unsigned 32-bit number. */
export function crc32c(bytes: Uint8Array): number {
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
