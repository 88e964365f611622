/**
 * @module log/partition-recovery
 * What a partition does when it opens its directory (docs/storage.md, "Recovery algorithm"):
 * remove leftovers, find where verification starts (the recovery point, when it fits the
 * files), trust the segments before it, verify every batch after it and cut the log at the
 * first bad one, then rebuild the idempotent-producer table from its snapshot plus the batch
 * headers after the snapshot.
 *
 * recoverPartition() returns the open segments and the recovered state, and adds what it found
 * and repaired to a report; it never sees the partition object, which is built from the result.
 */
import type { LogSink } from "./api.ts";
import { PRODUCER_STATE_FILE, scanProducerBatches, type ProducerStateTable, type SnapshotPosition } from "./producer-state.ts";
import { activeSegment, closeSegments } from "./partition-segments.ts";
import { readRecoveryPoint, type RecoveryPoint } from "./recovery-point.ts";
import { INDEX_SUFFIX, LOG_SUFFIX, parseSegmentFileName, Segment, segmentFileName, TIME_INDEX_SUFFIX, type SegmentContext } from "./segment.ts";
import type { Storage } from "./storage.ts";

export interface Truncation {
  topic: string;
  partition: number;
  offset: number;
  bytesDropped: number;
  reason: string;
}

export interface IndexRebuild {
  topic: string;
  partition: number;
  segment: number;
  reason: string;
}

/** What opening a partition found and repaired. */
export interface PartitionRecovery {
  truncations: Truncation[];
  indexRebuilds: IndexRebuild[];
  /** Bytes verified after the recovery point. */
  bytesScanned: number;
  /** Batch headers read to rebuild the idempotent-producer table. */
  producerBatchesScanned: number;
}

/** Which partition is recovering (for log lines) and the report its findings go to. */
export interface RecoveryReporter {
  topic: string;
  index: number;
  logger: LogSink;
  report: PartitionRecovery;
}

export interface RecoveryInputs extends RecoveryReporter {
  directory: string;
  storage: Storage;
  now: () => number;
  /**
   * How segments are opened. Its onIndexRebuilt should call noteIndexRebuilt with the same
   * report: segments rebuild unusable index files themselves, during open and after it.
   */
  context: SegmentContext;
  /** An empty table, filled from the snapshot and the batch headers after it. */
  producers: ProducerStateTable;
}

export interface RecoveredPartition {
  /** Oldest first; the last one is active (open for appends). */
  segments: Segment[];
  /** Where verification started: everything before it is on disk. */
  recoveryPoint: RecoveryPoint;
  /** Offset of the producer-state snapshot that was loaded, or -1 when none was. */
  snapshotOffset: number;
}

export function emptyRecoveryReport(): PartitionRecovery {
  return { truncations: [], indexRebuilds: [], bytesScanned: 0, producerBatchesScanned: 0 };
}

/** Adds an index rebuilt from its log to the report, and warns. */
export function noteIndexRebuilt(reporter: RecoveryReporter, segment: Segment, reason: string): void {
  const rebuild: IndexRebuild = { topic: reporter.topic, partition: reporter.index, segment: segment.baseOffset, reason };
  reporter.report.indexRebuilds.push(rebuild);
  reporter.logger.warn(rebuild, "segment index rebuilt from the log");
}

/**
 * Opens a partition directory, verifying everything after its recovery point. On an error the
 * segments opened so far are closed before it is rethrown.
 */
export function recoverPartition(inputs: RecoveryInputs): RecoveredPartition {
  const segments: Segment[] = [];
  try {
    const recoveryPoint = openSegments(inputs, segments);
    const active = activeSegment(segments);
    active.rollBaseMs = rollBaseAfterOpen(active, inputs.now());
    const snapshotOffset = rebuildProducerState(inputs, segments, recoveryPoint);
    return { segments, recoveryPoint, snapshotOffset };
  } catch (error) {
    closeSegments(segments, inputs);
    throw error;
  }
}

/** Tidies the directory and opens its segments into `segments`; returns the recovery point used. */
function openSegments(inputs: RecoveryInputs, segments: Segment[]): RecoveryPoint {
  const names = inputs.storage.readdir(inputs.directory);
  const nameSet = new Set(names);
  const bases = tidyDirectory(inputs.storage, inputs.directory, names);
  if (bases.length === 0) {
    inputs.logger.warn({ topic: inputs.topic, partition: inputs.index }, "partition has no segment; starting an empty one");
    const segment = Segment.create(inputs.context, inputs.directory, 0);
    segment.close();
    bases.push(0);
  }
  const start = recoveryStart(inputs, bases);
  openTrustedSegments(inputs, bases, start.segmentIndex, nameSet, segments);
  recoverSegments(inputs, bases.slice(start.segmentIndex), start.point, segments);
  return start.point;
}

/** Removes leftovers (temp files, indexes without a log); returns segment bases in order. */
function tidyDirectory(storage: Storage, directory: string, names: string[]): number[] {
  const bases: number[] = [];
  for (const name of names) {
    const base = parseSegmentFileName(name);
    if (base !== null) bases.push(base);
  }
  bases.sort((a, b) => a - b);
  const known = new Set(bases.map((base) => segmentFileName(base, "")));
  for (const name of names) {
    const isIndex = name.endsWith(INDEX_SUFFIX) || name.endsWith(TIME_INDEX_SUFFIX);
    const orphanIndex = isIndex && !known.has(name.slice(0, name.lastIndexOf(".")));
    if (name.endsWith(".tmp") || orphanIndex) storage.unlink(`${directory}/${name}`);
  }
  return bases;
}

/** Where verification starts: the recovery point when it is usable, else the first segment. */
function recoveryStart(inputs: RecoveryInputs, bases: number[]): { segmentIndex: number; point: RecoveryPoint } {
  const read = readRecoveryPoint(inputs.storage, inputs.directory);
  const first = bases[0]!;
  const fromStart = { segmentIndex: 0, point: { offset: first, segment: first, position: 0 } };
  if (read.point === null) {
    inputs.logger.warn({ topic: inputs.topic, partition: inputs.index, problem: read.problem ?? "missing" }, "no usable recovery point; verifying the whole log");
    return fromStart;
  }
  const point = read.point;
  // Retention removed the segment it pointed into: everything it covered is gone.
  if (point.segment < first) return fromStart;
  const segmentIndex = bases.indexOf(point.segment);
  const size = segmentIndex < 0 ? null : inputs.storage.fileSize(`${inputs.directory}/${segmentFileName(point.segment, LOG_SUFFIX)}`);
  if (segmentIndex < 0 || size === null || point.position > size) {
    inputs.logger.warn({ topic: inputs.topic, partition: inputs.index, recoveryPoint: point }, "recovery point does not match the files; verifying the whole log");
    return fromStart;
  }
  return { segmentIndex, point };
}

/**
 * Opens the first `count` segments, which lie before the recovery point and are trusted: size
 * from stat, next offset from the next segment's name, indexes loaded lazily (rebuilt now when
 * their files are missing).
 */
function openTrustedSegments(inputs: RecoveryInputs, bases: number[], count: number, names: Set<string>, segments: Segment[]): void {
  for (let i = 0; i < count; i++) {
    const base = bases[i]!;
    const sizeBytes = inputs.storage.fileSize(`${inputs.directory}/${segmentFileName(base, LOG_SUFFIX)}`) ?? 0;
    const segment = new Segment(inputs.context, inputs.directory, base, { nextOffset: bases[i + 1]!, sizeBytes, maxTimestampMs: null });
    segments.push(segment);
    if (!names.has(segmentFileName(base, INDEX_SUFFIX)) || !names.has(segmentFileName(base, TIME_INDEX_SUFFIX))) {
      segment.rebuildMissingIndexes();
    }
  }
}

/** Verifies the segments after the recovery point; cuts the log at the first bad batch. */
function recoverSegments(inputs: RecoveryInputs, bases: number[], point: RecoveryPoint, segments: Segment[]): void {
  let fromPosition = point.position;
  let fromOffset = point.offset;
  for (let i = 0; i < bases.length; i++) {
    const base = bases[i]!;
    const isLast = i === bases.length - 1;
    const segment = new Segment(inputs.context, inputs.directory, base, { nextOffset: fromOffset, sizeBytes: fromPosition, maxTimestampMs: -1 });
    if (isLast) segment.openWritable();
    segments.push(segment);
    const scan = segment.recoverTail(fromPosition, fromOffset);
    inputs.report.bytesScanned += scan.validBytes - fromPosition + scan.droppedBytes;
    if (scan.indexRebuilt) noteIndexRebuilt(inputs, segment, "index file missing or invalid");
    const nextBase = bases[i + 1];
    const gap = nextBase !== undefined && nextBase !== segment.nextOffset;
    if (scan.droppedBytes > 0 || gap) {
      const reason = scan.reason ?? `segment ${nextBase} does not continue at offset ${segment.nextOffset}`;
      truncateAfter(inputs, segment, bases.slice(i + 1), scan.droppedBytes, reason);
      return;
    }
    if (!isLast) segment.finishRecovery();
    fromPosition = 0;
    fromOffset = nextBase ?? segment.nextOffset;
  }
}

/** Deletes the segments after `segment` (which becomes the active one) and logs the cut. */
function truncateAfter(inputs: RecoveryInputs, segment: Segment, laterBases: number[], droppedInSegment: number, reason: string): void {
  let bytesDropped = droppedInSegment;
  for (const base of laterBases) {
    const later = new Segment(inputs.context, inputs.directory, base, { nextOffset: base, sizeBytes: 0, maxTimestampMs: -1 });
    bytesDropped += inputs.storage.fileSize(later.logPath) ?? 0;
    later.delete();
  }
  if (!segment.isActive) segment.openWritable();
  const truncation: Truncation = { topic: inputs.topic, partition: inputs.index, offset: segment.nextOffset, bytesDropped, reason };
  inputs.report.truncations.push(truncation);
  inputs.logger.warn({ ...truncation, segment: segment.baseOffset, segmentsRemoved: laterBases.length }, "log truncated during recovery");
}

/** segment.ms counts from the first batch's timestamp (clamped to now) across a restart. */
function rollBaseAfterOpen(active: Segment, nowMs: number): number {
  if (active.sizeBytes === 0) return -1;
  const fd = active.acquire();
  try {
    const first = active.firstBatchTimestamp(fd);
    return first === null ? nowMs : Math.min(first, nowMs);
  } finally {
    active.release();
  }
}

/**
 * Loads the producer-state snapshot and scans the batch headers after it; returns the
 * snapshot's offset (-1 when none was usable). No snapshot means no idempotent batch before
 * the recovery point (one is written before every checkpoint while the table is not empty); an
 * unusable one means scanning the whole log.
 */
export function rebuildProducerState(inputs: RecoveryInputs, segments: readonly Segment[], recoveryPoint: RecoveryPoint): number {
  const start = producerScanStart(inputs, segments, recoveryPoint);
  for (const segment of segments) {
    if (segment.baseOffset < start.from.segment || segment.sizeBytes === 0) continue;
    const fd = segment.acquire();
    try {
      const position = segment.baseOffset === start.from.segment ? start.from.position : 0;
      inputs.report.producerBatchesScanned += scanProducerBatches(inputs.storage, fd, position, segment.sizeBytes, inputs.producers);
    } finally {
      segment.release();
    }
  }
  inputs.producers.dirty = inputs.report.producerBatchesScanned > 0;
  return start.snapshotOffset;
}

/** Loads the snapshot into the table, when there is a usable one; says where the header scan starts. */
function producerScanStart(
  inputs: RecoveryInputs,
  segments: readonly Segment[],
  recoveryPoint: RecoveryPoint,
): { from: { segment: number; position: number }; snapshotOffset: number } {
  const bytes = inputs.storage.readFile(`${inputs.directory}/${PRODUCER_STATE_FILE}`);
  if (bytes === null) return { from: recoveryPoint, snapshotOffset: -1 };
  const logStartOffset = segments[0]!.baseOffset;
  const loaded = inputs.producers.loadSnapshot(bytes);
  const problem = "problem" in loaded ? loaded.problem : snapshotProblem(segments, loaded.position);
  if (problem === null && "position" in loaded) {
    const from = loaded.position.segment < logStartOffset ? { segment: logStartOffset, position: 0 } : loaded.position;
    return { from, snapshotOffset: loaded.position.offset };
  }
  inputs.logger.warn({ topic: inputs.topic, partition: inputs.index, problem }, "producer-state snapshot unusable; scanning the whole log for producer state");
  inputs.producers.clear();
  return { from: { segment: logStartOffset, position: 0 }, snapshotOffset: -1 };
}

/** Why a snapshot's position does not fit the recovered log, or null when it does. */
function snapshotProblem(segments: readonly Segment[], position: SnapshotPosition): string | null {
  const logStartOffset = segments[0]!.baseOffset;
  const nextOffset = activeSegment(segments).nextOffset;
  if (position.offset > nextOffset) return `snapshot at offset ${position.offset} is past the log end ${nextOffset}`;
  if (position.segment < logStartOffset) return null;
  const segment = segments.find((candidate) => candidate.baseOffset === position.segment);
  if (segment === undefined) return `snapshot names segment ${position.segment}, which does not exist`;
  if (position.position > segment.sizeBytes) return `snapshot position ${position.position} is past segment ${position.segment}'s end ${segment.sizeBytes}`;
  return null;
}
