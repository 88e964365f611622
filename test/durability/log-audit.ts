/**
 * Test support: reads a whole topic back through a live broker (raw `fetch` requests, the bytes
 * exactly as stored) and audits it against what producers were told: every acknowledged
 * message present exactly once at its acknowledged offset, no message stored twice, each
 * producer's messages in order per partition, every batch's checksum valid, offsets contiguous.
 */
import type { Connection } from "../../src/client/connection.ts";
import { decodeRecords, scanBatches, verifyBatch } from "../../src/format/record-batch.ts";

export interface Acked {
  partition: number;
  offset: number;
}

export interface AuditResult {
  /** Records read back, all partitions. */
  records: number;
  /** Acknowledged messages found at their acknowledged offsets. */
  ackedVerified: number;
  batches: number;
}

const decoder = new TextDecoder();

/** Reads every record of one partition: [offset, value] in log order; checks batches on the way. */
async function readPartition(connection: Connection, topic: string, partition: number, problems: string[]): Promise<{ values: Array<[number, string]>; batches: number }> {
  const values: Array<[number, string]> = [];
  let offset = 0;
  let batches = 0;
  let end = Number.POSITIVE_INFINITY;
  while (offset < end) {
    const response = await connection.request("fetch", { partitions: [{ topic, partition, offset, maxBytes: 4 << 20 }], maxBytes: 4 << 20, maxWaitMs: 0 });
    const entry = (response.partitions as Array<Record<string, unknown>>)[0]!;
    if (entry.error !== undefined) throw new Error(`fetch ${topic}/${partition}@${offset}: ${JSON.stringify(entry.error)}`);
    if (end === Number.POSITIVE_INFINITY) end = entry.nextOffset as number;
    const records = response.records as Uint8Array;
    if (records.length === 0) break;
    for (const span of scanBatches(records)) {
      const bytes = records.subarray(span.position, span.position + span.bytes);
      if (span.header.baseOffset !== offset) problems.push(`${topic}/${partition}: batch at offset ${span.header.baseOffset} where ${offset} was expected (offsets not contiguous)`);
      const header = verifyBatch(bytes); // throws CORRUPT_BATCH on a bad checksum
      for (const record of decodeRecords(bytes, header)) values.push([record.offset, decoder.decode(record.value ?? new Uint8Array())]);
      offset = header.baseOffset + header.recordCount;
      batches++;
    }
  }
  return { values, batches };
}

/**
 * Audits `topic` against `acked` (value -> where its producer was told it is). Values are
 * `<producer>:<sequence>`. Returns counts; every violation is collected in `problems`.
 */
export async function auditTopic(connection: Connection, topic: string, partitions: number, acked: ReadonlyMap<string, Acked>, problems: string[]): Promise<AuditResult> {
  const where = new Map<string, Acked>();
  let records = 0;
  let batches = 0;
  for (let partition = 0; partition < partitions; partition++) {
    const read = await readPartition(connection, topic, partition, problems);
    batches += read.batches;
    const lastSequence = new Map<string, number>();
    for (const [offset, value] of read.values) {
      records++;
      if (where.has(value)) problems.push(`${value} stored twice: ${JSON.stringify(where.get(value))} and ${partition}@${offset}`);
      where.set(value, { partition, offset });
      const [producer, sequenceText] = value.split(":");
      const sequence = Number(sequenceText);
      const previous = lastSequence.get(producer!) ?? -1;
      if (sequence <= previous) problems.push(`${topic}/${partition}@${offset}: ${value} after ${producer}:${previous} (out of order)`);
      lastSequence.set(producer!, sequence);
    }
  }
  let ackedVerified = 0;
  for (const [value, expected] of acked) {
    const found = where.get(value);
    if (found === undefined) problems.push(`acknowledged ${value} (${expected.partition}@${expected.offset}) is missing`);
    else if (found.partition !== expected.partition || found.offset !== expected.offset) problems.push(`acknowledged ${value} at ${expected.partition}@${expected.offset} is at ${found.partition}@${found.offset}`);
    else ackedVerified++;
  }
  return { records, ackedVerified, batches };
}
