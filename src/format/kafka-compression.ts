/**
 * @module format/kafka-compression
 * Decompresses the record section of a compressed Kafka batch (attributes bits 0-2: 1 gzip,
 * 2 snappy, 3 lz4, 4 zstd) for native consumers, bounded: at most `bytesMax` bytes come out,
 * checked as the output grows, so a small batch that inflates to gigabytes is refused
 * (MESSAGE_TOO_LARGE) instead of exhausting memory. gzip and zstd use the runtime's zlib
 * (`maxOutputLength` stops inflation at the bound); snappy and lz4 are small decoders of our own
 * (format/snappy.ts, format/lz4.ts), pure TypeScript so they work in the compiled binary.
 */
import { gunzipSync, zstdDecompressSync } from "node:zlib";
import { RunnelError } from "../errors.ts";
import { LIMITS } from "../limits.ts";
import { lz4Decompress } from "./lz4.ts";
import { snappyDecompress } from "./snappy.ts";

export const KAFKA_CODEC = { none: 0, gzip: 1, snappy: 2, lz4: 3, zstd: 4 } as const;
const CODEC_NAMES = ["none", "gzip", "snappy", "lz4", "zstd"];

/** Kafka's codec name for attributes bits 0-2 (for messages). */
export function kafkaCodecName(codec: number): string {
  return CODEC_NAMES[codec] ?? `codec ${codec}`;
}

function zlibBounded(codecName: string, inflate: () => Uint8Array, bytesMax: number): Uint8Array {
  try {
    return inflate();
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    const tooLarge = /larger than|maxOutputLength|ERR_BUFFER_TOO_LARGE/i.test(message) || (error as { code?: string }).code === "ERR_BUFFER_TOO_LARGE";
    if (tooLarge) throw new RunnelError("MESSAGE_TOO_LARGE", `${codecName}: decompressed records pass ${bytesMax} bytes (the bound on one decompressed batch); the batch is refused`, { cause: error });
    throw new RunnelError("CORRUPT_BATCH", `${codecName}: the records do not decompress: ${message}`, { cause: error });
  }
}

/** The decompressed record section of a Kafka batch compressed with `codec`. */
export function decompressKafkaRecords(codec: number, compressed: Uint8Array, bytesMax: number = LIMITS.decompressedBatchBytesMax): Uint8Array {
  switch (codec) {
    case KAFKA_CODEC.gzip:
      return zlibBounded("gzip", () => gunzipSync(compressed, { maxOutputLength: bytesMax }), bytesMax);
    case KAFKA_CODEC.snappy:
      return snappyDecompress(compressed, bytesMax);
    case KAFKA_CODEC.lz4:
      return lz4Decompress(compressed, bytesMax);
    case KAFKA_CODEC.zstd:
      return zlibBounded("zstd", () => zstdDecompressSync(compressed, { maxOutputLength: bytesMax }), bytesMax);
    default:
      throw new RunnelError("CORRUPT_BATCH", `Kafka batch: compression ${kafkaCodecName(codec)} is unknown`);
  }
}
