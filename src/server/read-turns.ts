/**
 * @module server/read-turns
 * Fair turns for connections sending large frames, so they cannot hold the event loop.
 *
 * Bun reads each ready socket once per event-loop iteration (up to 512 KiB at a time), and calls
 * the connection with that chunk. With 200 connections streaming 16 MiB frames, one iteration
 * copies some 100 MiB before the loop gets back to anyone else: a well-behaved client waited
 * ~200-300 ms for a `stats` answer. So bytes read per iteration are counted; once they pass
 * TURN_BYTES_MAX, a connection in the middle of a large frame (over SMALL_FRAME_BYTES) yields:
 * its socket is paused and it queues; each later iteration resumes only as many queued
 * connections as its byte allowance covers, first come first served. Small frames never yield.
 */

/** Bytes read per event-loop iteration before large-frame connections start yielding. */
export const TURN_BYTES_MAX = 4 * 1024 * 1024;
/** Bytes counted before the count's reset is scheduled (see noteRead). */
const TURN_RESET_BYTES = 256 * 1024;
/** What one resumed connection may read in an iteration (Bun's receive buffer). */
const READ_BYTES_PER_RESUME = 512 * 1024;

export type Resume = () => void;

export class ReadTurns {
  private turnBytes = 0;
  private turnScheduled = false;
  private readonly queue = new Set<Resume>();

  /** Connections waiting for their turn. */
  get waiting(): number {
    return this.queue.size;
  }

  /**
   * Counts `bytes` read now; true when a large-frame connection should yield. The count is reset
   * by an immediate at the end of the iteration, scheduled only once it passes
   * TURN_RESET_BYTES: small reads (the data path's usual ones) then cost no immediate per
   * event-loop iteration, and at most TURN_RESET_BYTES carry over into a later iteration's
   * count (6% of TURN_BYTES_MAX).
   */
  noteRead(bytes: number): boolean {
    this.turnBytes += bytes;
    if (this.turnBytes > TURN_RESET_BYTES) this.scheduleTurn();
    return this.turnBytes > TURN_BYTES_MAX;
  }

  /** Queues `resume`, called in a later iteration. */
  yieldTurn(resume: Resume): void {
    this.queue.add(resume);
    this.scheduleTurn();
  }

  cancel(resume: Resume): void {
    this.queue.delete(resume);
  }

  private scheduleTurn(): void {
    if (this.turnScheduled) return;
    this.turnScheduled = true;
    // setImmediate runs after the I/O phase: the next iteration's reads start from zero.
    setImmediate(this.newTurn);
  }

  /** A method made once, not a closure per iteration; copies the queue only when someone waits. */
  private readonly newTurn = (): void => {
    this.turnScheduled = false;
    this.turnBytes = 0;
    if (this.queue.size === 0) return;
    let allowance = TURN_BYTES_MAX;
    for (const resume of [...this.queue]) {
      if (allowance < READ_BYTES_PER_RESUME) break;
      allowance -= READ_BYTES_PER_RESUME;
      this.queue.delete(resume);
      resume();
    }
    if (this.queue.size > 0) this.scheduleTurn();
  };
}
