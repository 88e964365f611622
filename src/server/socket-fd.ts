/**
 * @module server/socket-fd
 * The one place that reads a Bun socket's file descriptor.
 *
 * Bun's TCP sockets carry their fd as `socket.fd` (Bun 1.4.5), but the property is missing
 * from bun-types. sendfile needs it; everything else uses the socket object. Returns null when
 * the fd is absent or negative (a closed socket, another runtime), which makes the caller
 * fall back to the copy path.
 */
import type { Socket } from "bun";

export function socketFd(socket: Socket<unknown>): number | null {
  const fd: unknown = (socket as unknown as { fd?: unknown }).fd;
  return typeof fd === "number" && Number.isInteger(fd) && fd >= 0 ? fd : null;
}
