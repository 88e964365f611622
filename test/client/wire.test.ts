import { describe, expect, test } from "bun:test";
import { RunnelError } from "../../src/errors.ts";
import { brokerError, readArray, readInt } from "../../src/client/wire.ts";

describe("wire", () => {
  test("a known broker code is kept, with the broker's details", () => {
    const error = brokerError({ code: "OFFSET_OUT_OF_RANGE", message: "past the end", details: { nextOffset: 7 } }, "fetch of t/0");
    expect(error).toBeInstanceOf(RunnelError);
    expect(error.code).toBe("OFFSET_OUT_OF_RANGE");
    expect(error.message).toBe("fetch of t/0: past the end");
    expect(error.details).toEqual({ nextOffset: 7, brokerCode: "OFFSET_OUT_OF_RANGE" });
  });

  test("an unknown broker code (a newer broker) becomes INTERNAL and keeps the raw code", () => {
    const error = brokerError({ code: "QUOTA_EXCEEDED", message: "slow down" }, "produce");
    expect(error.code).toBe("INTERNAL");
    expect(error.details?.brokerCode).toBe("QUOTA_EXCEEDED");
    expect(error.message).toContain("unknown broker code QUOTA_EXCEEDED");
  });

  test("a garbage error value still becomes a RunnelError", () => {
    expect(brokerError("nonsense", "x").code).toBe("INTERNAL");
  });

  test("malformed fields are RunnelErrors naming the operation and the field", () => {
    expect(() => readInt(1.5, "fetch", "partitions[0].recordsBytes")).toThrow("'fetch' with a malformed response: partitions[0].recordsBytes is not an integer");
    expect(() => readArray({}, "metadata", "topics")).toThrow(RunnelError);
  });
});
