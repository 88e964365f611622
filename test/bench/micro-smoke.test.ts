/** The micro-benchmark bodies at smoke size: they run and produce the right data (never timings). */
import { expect, test } from "bun:test";
import { clientDecodeSmoke } from "../../bench/client-decode.bench.ts";
import { fetchSmoke } from "../../bench/fetch.bench.ts";
import { protocolSmoke, requestCodecSmoke } from "../../bench/protocol.bench.ts";

test("frame parsing finds every frame whether it arrives whole or in 1,500-byte pieces", () => {
  const { whole, pieces, baseline } = protocolSmoke();
  expect(whole.frames).toBe(200);
  expect(pieces).toEqual(whole);
  expect(baseline).toBe(200);
  // Frame f's body starts with byte f & 0xff: the sum proves each frame was cut at the right place.
  expect(whole.firstBytesSum).toBe((199 * 200) / 2);
});

test("request decoding: the fast and the generic path read the same ids, and both produce answers are the same size", () => {
  const { generic, fast, answersByHand, answersGeneric } = requestCodecSmoke();
  expect(generic).toBe((99 * 100) / 2);
  expect(fast).toBe(generic);
  expect(answersByHand).toBe(answersGeneric);
});

test("a loopback fetch delivers every byte by sendfile and by read + write", async () => {
  const { fileBytes, sendfile, copy } = await fetchSmoke();
  expect(sendfile).toBe(fileBytes);
  expect(copy).toBe(fileBytes);
});

test("client decode: the consumer path, records-only and header counts agree", () => {
  expect(clientDecodeSmoke()).toEqual({ consumer: 200, recordsOnly: 200, headers: 200, lastOffset: 199 });
});
