/**
 * @module server/stats
 * The broker's counters, reported by the `stats` op. Plain numbers bumped in place: cheap
 * enough for the hot path, and a test can read them to see which send path a fetch took.
 */

export interface BrokerStats {
  connectionsOpen: number;
  connectionsAccepted: number;
  connectionsRejected: number;
  /** Connections whose reads are paused right now (backpressure). */
  connectionsPaused: number;
  requests: number;
  requestErrors: number;
  framesOversized: number;
  bytesReceived: number;
  /** Response bytes written with socket.write (heads, messages, and copy-path records). */
  bytesSentWrite: number;
  /** Record bytes sent by sendfile(2), never entering user space. */
  bytesSentSendfile: number;
  /** Record bytes read into memory and written by the copy path. */
  bytesSentCopy: number;
  /**
   * Record bytes written one at a time by the sendfile path after EAGAIN, to make Bun arm
   * `drain` (server/outbound.ts). Kept apart so bytesSentCopy counts only the copy path.
   */
  bytesSentProbe: number;
  /**
   * Record bytes of small replies read into memory and written in one write with their head
   * (server/outbound.ts, gathered writes): one wake-up of the consumer per answer, not two.
   */
  bytesSentGathered: number;
  batchesAppended: number;
  bytesAppended: number;
  /** Idempotent batches that were retries of stored ones: answered, not appended again. */
  batchesDuplicate: number;
  fetchesWaiting: number;
  syncs: number;
}

export function createStats(): BrokerStats {
  return {
    connectionsOpen: 0,
    connectionsAccepted: 0,
    connectionsRejected: 0,
    connectionsPaused: 0,
    requests: 0,
    requestErrors: 0,
    framesOversized: 0,
    bytesReceived: 0,
    bytesSentWrite: 0,
    bytesSentSendfile: 0,
    bytesSentCopy: 0,
    bytesSentProbe: 0,
    bytesSentGathered: 0,
    batchesAppended: 0,
    bytesAppended: 0,
    batchesDuplicate: 0,
    fetchesWaiting: 0,
    syncs: 0,
  };
}
