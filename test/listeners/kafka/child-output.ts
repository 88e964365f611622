/**
 * @module test/listeners/kafka/child-output
 * Reads a client process's stdout line by line as it comes, for tests that act once the client
 * says it is ready ("ready\n") and then check what else it printed. Chunks do not follow lines:
 * "ready" and its newline may come in separate reads.
 */

export interface LineReader {
  /** The next complete line, without its newline; null at the end of the output. */
  line(): Promise<string | null>;
  /** Everything after the lines read so far, up to the end of the output. */
  rest(): Promise<string>;
}

export function lineReader(stream: ReadableStream<Uint8Array>): LineReader {
  const reader = stream.getReader();
  const decoder = new TextDecoder();
  let buffered = "";
  let ended = false;
  async function more(): Promise<void> {
    const chunk = await reader.read();
    if (chunk.done) ended = true;
    else buffered += decoder.decode(chunk.value, { stream: true });
  }
  return {
    async line() {
      while (!buffered.includes("\n") && !ended) await more();
      const end = buffered.indexOf("\n");
      if (end < 0) return null;
      const line = buffered.slice(0, end);
      buffered = buffered.slice(end + 1);
      return line;
    },
    async rest() {
      while (!ended) await more();
      return buffered;
    },
  };
}
