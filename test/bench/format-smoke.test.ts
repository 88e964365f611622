import { expect, test } from "bun:test";
import { formatSmoke } from "../../bench/format.bench.ts";

test("format benchmark bodies run at smoke size and agree with zlib's crc32", () => {
  expect(formatSmoke()).toEqual({ records: 50, crcAgrees: true });
});
