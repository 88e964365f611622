/**
 * @module bench/sealed-index
 * What reading sealed segments' indexes from their files costs (issue 17 part 3). Side by side:
 * - one lookup in a full segment's offset index (1 GiB of log at one entry per 4 KiB: 262,144
 *   entries) held in memory (OffsetIndex) against the same index sealed (SealedOffsetIndex:
 *   block heads in memory, one pread of a 2 KiB block per lookup, the file in the page cache);
 * - a 1 MiB fetch (Partition.read: index lookup, header scan, slice) from a sealed segment against
 *   the same from the active segment, whose index is in memory.
 *
 *   bun bench/sealed-index.bench.ts
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { bench, do_not_optimize, group, run, summary } from "mitata";
import { encodeBatch } from "../src/format/record-batch.ts";
import { openLogManager } from "../src/log/log-manager.ts";
import { OffsetIndex } from "../src/log/offset-index.ts";
import { SealedOffsetIndex } from "../src/log/sealed-index.ts";
import { nativeStorage } from "../src/log/storage.ts";

const ENTRIES = 262_144;
const directory = fs.mkdtempSync(path.join(os.tmpdir(), "runnel-sealed-index-bench-"));

const inMemory = new OffsetIndex();
for (let entry = 0; entry < ENTRIES; entry++) inMemory.append(entry * 40 + 1, entry * 4096 + 4096);
const indexPath = path.join(directory, "lookup.index");
inMemory.markRewrite();
inMemory.persistTo(nativeStorage, indexPath, false);
const sealed = SealedOffsetIndex.fromFile(nativeStorage, indexPath, ENTRIES * 40 + 2, ENTRIES * 4096 + 8192)!;
let probe = 12345;
const nextProbe = (): number => (probe = (probe * 1103515245 + 12345) % (ENTRIES * 40));

// A partition of 4 MiB segments: the first ones sealed, the last active; 1 KiB batches.
const manager = await openLogManager({ dataDir: path.join(directory, "log"), topicDefaults: { "segment.bytes": 4 * 1024 * 1024 } });
manager.createTopic("t", { partitions: 1 });
const partition = manager.partition("t", 0);
const records = Array.from({ length: 10 }, (_, index) => ({ key: null, value: new Uint8Array(100).fill(index), timestamp: 1_700_000_000_000 }));
while (partition.info().segmentCount < 4 || partition.nextOffset - partition.info().logStartOffset < 120_000) partition.append(encodeBatch(records, { nowMs: 1_700_000_000_000 }));
const sealedOffset = 1_000;
const activeStart = partition.nextOffset - 20_000;

summary(() => {
  group("offset index lookup (262,144 entries)", () => {
    bench("in memory (OffsetIndex)", () => do_not_optimize(inMemory.floorPosition(nextProbe())));
    bench("sealed, read from the file (SealedOffsetIndex)", () => do_not_optimize(sealed.floorPosition(nextProbe())));
  });
  group("1 MiB fetch: Partition.read", () => {
    bench("active segment (index in memory)", () => partition.read(activeStart, 1 << 20)!.release());
    bench("sealed segment (index read from the file)", () => partition.read(sealedOffset, 1 << 20)!.release());
  });
});

try {
  await run();
} finally {
  await manager.close();
  fs.rmSync(directory, { recursive: true, force: true });
}
