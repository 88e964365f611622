/**
 * @module server/direct-reads
 * Reads native connections' waiting bytes into one buffer the broker owns and reuses.
 *
 * Bun hands every socket read to `data` as a fresh buffer (up to 512 KiB, copied out of its
 * loop's receive buffer), which is garbage as soon as the frame decoder has taken its bytes. At
 * a tuned produce's rate that garbage piled up to 60-90 MB before the engine collected it: the
 * largest item of the broker's peak RSS (docs/architecture.md "Memory"). So once a connection
 * has dealt with the bytes at hand, it reads what the kernel holds itself, with
 * `recv(MSG_DONTWAIT)` into this buffer, until nothing is waiting (server/connection.ts). Bun's
 * epoll is level-triggered, so bytes left in the kernel when a connection stops (backpressure,
 * its turn is over) are reported again as usual.
 *
 * A connection reads directly only while its traffic is large (the last read brought at least
 * DIRECT_READ_AFTER_BYTES, or it is in the middle of a large frame): there more bytes are likely
 * waiting, while a connection of small requests would only pay a recv that finds nothing.
 *
 * One buffer serves every connection of the broker: a connection reads into it only when its
 * decoder holds no unread bytes, hands frames that lie inside it to dispatch, which is done with
 * a request's bytes when it returns (as with the reused assembly buffer, protocol/frame.ts), and
 * makes the decoder copy out any unread rest before it lets go (`FrameDecoder.detachChunk`).
 * Plain TCP only: a TLS socket's bytes are ciphertext only Bun can read.
 */
import { libc, RECV_WOULD_BLOCK } from "../native/libc.ts";

/** Size of the shared receive buffer: what one recv may take (Bun's own reads take up to 512 KiB). */
export const DIRECT_READ_BYTES = 256 * 1024;

/** A read at least this large (or a large frame in progress) makes a connection read directly next. */
export const DIRECT_READ_AFTER_BYTES = 64 * 1024;

export class DirectReads {
  private buffer: Uint8Array | null = null;

  /** Whether this platform can read sockets directly (Linux, native libc). */
  static get available(): boolean {
    return libc.recv !== null;
  }

  /**
   * Reads what socket `fd` holds now into the shared buffer. Returns a view of the bytes read
   * (valid until the next call), or null when nothing is waiting or the peer has gone (Bun sees
   * the same end on its own read and closes the socket).
   */
  read(fd: number): Uint8Array | null {
    const recv = libc.recv;
    if (recv === null) return null;
    this.buffer ??= new Uint8Array(DIRECT_READ_BYTES);
    const bytes = recv(fd, this.buffer);
    if (bytes === RECV_WOULD_BLOCK || bytes <= 0) return null;
    return this.buffer.subarray(0, bytes);
  }
}
