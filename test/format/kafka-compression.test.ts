/**
 * Decompressing Kafka batches for native consumers (format/kafka-compression.ts, snappy.ts,
 * lz4.ts): each codec round-trips the record section, the decompressed size is bounded while
 * inflating (a zip bomb is refused, not allocated), and broken input is CORRUPT_BATCH.
 * Real client output (kcat -z each codec) is read in test/listeners/kafka/kcat-compressed.test.ts.
 */
import { describe, expect, test } from "bun:test";
import { gzipSync } from "node:zlib";
import { RunnelError } from "../../src/errors.ts";
import { decodeKafkaRecords, encodeKafkaBatch } from "../../src/format/kafka-batch.ts";
import { decompressKafkaRecords, KAFKA_CODEC } from "../../src/format/kafka-compression.ts";
import { lz4Decompress } from "../../src/format/lz4.ts";
import { crc32c } from "../../src/format/crc32c.ts";
import { BATCH_HEADER_BYTES, CRC_START, FIELD } from "../../src/format/record-batch.ts";
import { snappyDecompress } from "../../src/format/snappy.ts";
import { prng } from "../support/prng.ts";

const text = new TextEncoder();

function codeOf(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    if (error instanceof RunnelError) return error.code;
    throw error;
  }
  return "no error";
}

/** A raw Snappy block: literal "abcd" then a copy of 8 bytes 4 back (kind 01), then literal "!". */
const SNAPPY_BLOCK = new Uint8Array([13, 3 << 2, 0x61, 0x62, 0x63, 0x64, 0x01 | ((8 - 4) << 2), 4, 0 << 2, 0x21]);

/** An LZ4 frame (no checksums) with one compressed block: literal "abcd", match 8 back 4, literal "!". */
function lz4Frame(block: Uint8Array): Uint8Array {
  const frame = [0x04, 0x22, 0x4d, 0x18, 0x60, 0x40, 0x82];
  const size = [block.length & 0xff, (block.length >> 8) & 0xff, 0, 0];
  return new Uint8Array([...frame, ...size, ...block, 0, 0, 0, 0]);
}
const LZ4_BLOCK = new Uint8Array([0x44, 0x61, 0x62, 0x63, 0x64, 4, 0, 0x10, 0x21]);

/** A compressed Kafka batch: an uncompressed one's records replaced by `compress(records)`. */
function compressedBatch(codec: number, compress: (records: Uint8Array) => Uint8Array): { batch: Uint8Array; records: ReturnType<typeof decodeKafkaRecords> } {
  const plain = encodeKafkaBatch(Array.from({ length: 30 }, (_, index) => ({ key: text.encode(`k${index}`), value: text.encode(`value ${index} `.repeat(10)), headers: [["h", text.encode(`${index}`)]] as Array<[string, Uint8Array]>, timestamp: 1_700_000_000_000 + index })));
  const compressed = compress(plain.subarray(BATCH_HEADER_BYTES));
  const batch = new Uint8Array(BATCH_HEADER_BYTES + compressed.length);
  batch.set(plain.subarray(0, BATCH_HEADER_BYTES));
  batch.set(compressed, BATCH_HEADER_BYTES);
  const view = new DataView(batch.buffer);
  view.setInt32(FIELD.batchLength, batch.length - 12);
  view.setInt16(FIELD.attributes, codec);
  view.setUint32(FIELD.crc, crc32c(batch.subarray(CRC_START)));
  return { batch, records: decodeKafkaRecords(plain) };
}

describe("Kafka batch decompression", () => {
  test("a gzip and a zstd batch decode to the same records as the uncompressed one", () => {
    for (const [codec, compress] of [
      [KAFKA_CODEC.gzip, (bytes: Uint8Array) => gzipSync(bytes)],
      [KAFKA_CODEC.zstd, (bytes: Uint8Array) => Bun.zstdCompressSync(bytes)],
    ] as const) {
      const { batch, records } = compressedBatch(codec, compress);
      expect(decodeKafkaRecords(batch)).toEqual(records);
    }
  });

  test("an lz4 batch (uncompressed blocks in a frame) decodes to the same records", () => {
    const { batch, records } = compressedBatch(KAFKA_CODEC.lz4, (bytes) => {
      const header = [0x04, 0x22, 0x4d, 0x18, 0x60, 0x40, 0x82];
      const size = bytes.length | 0x80000000;
      return new Uint8Array([...header, size & 0xff, (size >>> 8) & 0xff, (size >>> 16) & 0xff, size >>> 24, ...bytes, 0, 0, 0, 0]);
    });
    expect(decodeKafkaRecords(batch)).toEqual(records);
  });

  test("snappy decodes literals and overlapping copies, raw and in xerial framing", () => {
    expect(new TextDecoder().decode(snappyDecompress(SNAPPY_BLOCK, 1024))).toBe("abcdabcdabcd!");
    const xerialHeader = [0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00, 0, 0, 0, 1, 0, 0, 0, 1];
    const chunk = [0, 0, 0, SNAPPY_BLOCK.length, ...SNAPPY_BLOCK];
    const xerial = new Uint8Array([...xerialHeader, ...chunk, ...chunk]);
    expect(new TextDecoder().decode(snappyDecompress(xerial, 1024))).toBe("abcdabcdabcd!".repeat(2));
  });

  test("lz4 decodes a compressed block with an overlapping match", () => {
    expect(new TextDecoder().decode(lz4Decompress(lz4Frame(LZ4_BLOCK), 1024))).toBe("abcdabcdabcd!");
  });

  test("a zip bomb is refused with MESSAGE_TOO_LARGE at the bound, for every codec", () => {
    const zeros = new Uint8Array(8 << 20);
    expect(codeOf(() => decompressKafkaRecords(KAFKA_CODEC.gzip, gzipSync(zeros), 1 << 20))).toBe("MESSAGE_TOO_LARGE");
    expect(codeOf(() => decompressKafkaRecords(KAFKA_CODEC.zstd, Bun.zstdCompressSync(zeros), 1 << 20))).toBe("MESSAGE_TOO_LARGE");
    // snappy: a block that declares 2^32 bytes is refused before anything is allocated
    expect(codeOf(() => snappyDecompress(new Uint8Array([0x80, 0x80, 0x80, 0x80, 0x10, 0]), 1 << 20))).toBe("MESSAGE_TOO_LARGE");
    // lz4: one literal then a long self-overlapping match (255-byte length runs) expands past the bound
    const longMatch = new Uint8Array([0x1f, 0x00, 1, 0, ...new Array<number>(5000).fill(255), 0]);
    expect(codeOf(() => lz4Decompress(lz4Frame(longMatch), 1 << 20))).toBe("MESSAGE_TOO_LARGE");
  });

  test("truncated or garbled compressed records are CORRUPT_BATCH, never a crash", () => {
    for (let cut = 0; cut < SNAPPY_BLOCK.length; cut++) expect(codeOf(() => snappyDecompress(SNAPPY_BLOCK.subarray(0, cut), 1024))).toBe("CORRUPT_BATCH");
    const frame = lz4Frame(LZ4_BLOCK);
    for (let cut = 1; cut < frame.length - 4; cut++) expect(codeOf(() => lz4Decompress(frame.subarray(0, cut), 1024))).toBe("CORRUPT_BATCH");
    expect(codeOf(() => lz4Decompress(lz4Frame(new Uint8Array([0x00, 9, 0])), 1024))).toBe("CORRUPT_BATCH"); // a match before any output
    expect(codeOf(() => decompressKafkaRecords(KAFKA_CODEC.gzip, text.encode("not gzip")))).toBe("CORRUPT_BATCH");
    expect(codeOf(() => decompressKafkaRecords(KAFKA_CODEC.zstd, text.encode("not zstd")))).toBe("CORRUPT_BATCH");
    expect(codeOf(() => decompressKafkaRecords(5, new Uint8Array(4)))).toBe("CORRUPT_BATCH");
  });
});

test("an lz4 skippable frame is skipped, and one that claims more bytes than there are is CORRUPT_BATCH", () => {
  const skippable = [0x50, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 9, 9, 9];
  expect(new TextDecoder().decode(lz4Decompress(new Uint8Array([...skippable, ...lz4Frame(LZ4_BLOCK)]), 1024))).toBe("abcdabcdabcd!");
  expect(codeOf(() => lz4Decompress(new Uint8Array([0x50, 0x2a, 0x4d, 0x18, 99, 0, 0, 0, 9]), 1024))).toBe("CORRUPT_BATCH");
});

test("2,000 seeded junk inputs into the snappy and lz4 decoders end in a stable error code or bytes within the bound, never a crash", () => {
  const random = prng(7);
  const seen = new Set<string>();
  for (let round = 0; round < 2_000; round++) {
    const junk = new Uint8Array(1 + Math.floor(random() * 200)).map(() => Math.floor(random() * 256));
    // Half the lz4 inputs get a valid frame header, so the block decoder sees junk too.
    const framed = round % 2 === 0 ? new Uint8Array([0x04, 0x22, 0x4d, 0x18, 0x60, 0x40, 0x82, junk.length, 0, 0, 0, ...junk]) : junk;
    for (const decode of [() => snappyDecompress(junk, 4096), () => lz4Decompress(framed, 4096)]) {
      try {
        expect(decode().length).toBeLessThanOrEqual(4096);
        seen.add("ok");
      } catch (error) {
        expect(error).toBeInstanceOf(RunnelError);
        seen.add((error as RunnelError).code);
      }
    }
  }
  expect([...seen].every((code) => ["ok", "CORRUPT_BATCH", "MESSAGE_TOO_LARGE"].includes(code))).toBe(true);
});
