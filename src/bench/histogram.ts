/**
 * @module bench/histogram
 * A small log-linear latency histogram (the HDR idea, without the dependency): values are
 * integer nanoseconds; below 2^11 every value has its own bucket, above it each power of two is
 * split into 1,024 equal buckets, so any recorded value is reported within 0.1% (one bucket
 * width, rounded up to the bucket's top). Fixed memory (about 430 KiB), O(1) record, no
 * allocation per value: a load generator records millions of values per second into it.
 */

const SUB_BUCKET_BITS = 10;
const SUB_BUCKETS = 1 << SUB_BUCKET_BITS; // 1,024 buckets per power of two
const LINEAR_LIMIT = SUB_BUCKETS * 2; // values below this are exact
/** Largest recordable value: 2^53 ns (104 days); larger values are clamped. */
const MAX_EXPONENT = 53;
const BUCKETS = LINEAR_LIMIT + (MAX_EXPONENT - SUB_BUCKET_BITS - 1) * SUB_BUCKETS;

export interface Percentile {
  /** 0..100 */
  percentile: number;
  valueNs: number;
}

export interface HistogramSnapshot {
  /** [bucket index, count] of every non-empty bucket. */
  buckets: Array<[number, number]>;
  total: number;
  sumNs: number;
  maxNs: number;
  minNs: number;
}

export class LatencyHistogram {
  private readonly counts = new Float64Array(BUCKETS);
  private total = 0;
  private maxNs = 0;
  private minNs = Number.POSITIVE_INFINITY;
  private sumNs = 0;

  get count(): number {
    return this.total;
  }

  get max(): number {
    return this.total === 0 ? 0 : this.maxNs;
  }

  get min(): number {
    return this.total === 0 ? 0 : this.minNs;
  }

  get mean(): number {
    return this.total === 0 ? 0 : this.sumNs / this.total;
  }

  /** Records one value in nanoseconds (negative values count as 0). */
  record(valueNs: number): void {
    const value = valueNs > 0 ? Math.round(valueNs) : 0;
    this.counts[bucketOf(value)]! += 1;
    this.total += 1;
    this.sumNs += value;
    if (value > this.maxNs) this.maxNs = value;
    if (value < this.minNs) this.minNs = value;
  }

  /** Adds every value of `other` (histograms of several producers or consumers). */
  add(other: LatencyHistogram): void {
    for (let index = 0; index < BUCKETS; index++) this.counts[index]! += other.counts[index]!;
    this.total += other.total;
    this.sumNs += other.sumNs;
    this.maxNs = Math.max(this.maxNs, other.maxNs);
    this.minNs = Math.min(this.minNs, other.minNs);
  }

  /**
   * The smallest value v such that at least `percentile`% of the values are <= v (reported as
   * its bucket's top, never above the true maximum). 0 when empty.
   */
  valueAt(percentile: number): number {
    if (this.total === 0) return 0;
    if (percentile >= 100) return this.maxNs;
    // The epsilon keeps 99.9% of 1,000 at rank 999 despite 0.999 * 1000 = 999.0000000000001.
    const rank = Math.max(1, Math.ceil((Math.max(0, percentile) * this.total) / 100 - 1e-9));
    let seen = 0;
    for (let index = 0; index < BUCKETS; index++) {
      seen += this.counts[index]!;
      if (seen >= rank) return Math.min(bucketTop(index), this.maxNs);
    }
    return this.maxNs;
  }

  /** The histogram as plain JSON (non-empty buckets only), to cross a process boundary. */
  toSnapshot(): HistogramSnapshot {
    const buckets: Array<[number, number]> = [];
    for (let index = 0; index < BUCKETS; index++) if (this.counts[index]! > 0) buckets.push([index, this.counts[index]!]);
    return { buckets, total: this.total, sumNs: this.sumNs, maxNs: this.maxNs, minNs: this.total === 0 ? 0 : this.minNs };
  }

  /** Adds the values of a snapshot (bucket indexes outside this histogram's range are refused). */
  addSnapshot(snapshot: HistogramSnapshot): void {
    for (const [index, count] of snapshot.buckets) {
      if (!Number.isInteger(index) || index < 0 || index >= BUCKETS) throw new RangeError(`histogram bucket ${index} out of range`);
      this.counts[index]! += count;
    }
    if (snapshot.total === 0) return;
    this.total += snapshot.total;
    this.sumNs += snapshot.sumNs;
    this.maxNs = Math.max(this.maxNs, snapshot.maxNs);
    this.minNs = Math.min(this.minNs, snapshot.minNs);
  }

  /** Percentiles along the HDR "1 - 1/2^k" ladder (50, 75, 87.5, ...), up to the maximum. */
  curve(): Percentile[] {
    const points: Percentile[] = [];
    if (this.total === 0) return points;
    for (let step = 1; step <= 40; step++) {
      const percentile = 100 * (1 - 1 / 2 ** step);
      points.push({ percentile, valueNs: this.valueAt(percentile) });
      if (1 / 2 ** step < 1 / this.total) break;
    }
    points.push({ percentile: 100, valueNs: this.maxNs });
    return points;
  }
}

function bucketOf(value: number): number {
  if (value < LINEAR_LIMIT) return value;
  const exponent = Math.min(MAX_EXPONENT - 1, Math.floor(Math.log2(value)));
  const shift = exponent - SUB_BUCKET_BITS;
  // Top SUB_BUCKET_BITS + 1 bits of the value: 1,024..2,047 within this power of two.
  const sub = Math.min(SUB_BUCKETS * 2 - 1, Math.floor(value / 2 ** shift));
  return LINEAR_LIMIT + (shift - 1) * SUB_BUCKETS + (sub - SUB_BUCKETS);
}

/** Largest value that falls in bucket `index`. */
function bucketTop(index: number): number {
  if (index < LINEAR_LIMIT) return index;
  const shift = Math.floor((index - LINEAR_LIMIT) / SUB_BUCKETS) + 1;
  const sub = ((index - LINEAR_LIMIT) % SUB_BUCKETS) + SUB_BUCKETS;
  return (sub + 1) * 2 ** shift - 1;
}
