import { describe, expect, test } from "bun:test";
import { UsageError, choiceFlag, intFlag, parseArgs, required } from "../../src/cli/args.ts";
import { parseFrom } from "../../src/cli/consume.ts";
import { parseConfig } from "../../src/cli/topics.ts";

const specs = {
  topic: { type: "string", short: "t" },
  config: { type: "strings" },
  help: { type: "boolean", short: "h" },
} as const;

function usageMessage(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    if (error instanceof UsageError) return error.message;
    throw error;
  }
  return "no error";
}

describe("parseArgs", () => {
  test("reads --name value, --name=value, short aliases, booleans, repeats and positionals", () => {
    const parsed = parseArgs(["create", "-t", "a", "--config=x=1", "--config", "y=2", "-h", "rest", "--", "--not-a-flag"], specs);
    expect(parsed.flags).toEqual({ topic: "a", config: ["x=1", "y=2"], help: true });
    expect(parsed.positionals).toEqual(["create", "rest", "--not-a-flag"]);
  });

  test("negative numbers and '-' are positionals, not flags", () => {
    expect(parseArgs(["-5", "-"], specs).positionals).toEqual(["-5", "-"]);
  });

  test("an unknown option, a missing value, or a value on a boolean is a UsageError naming it", () => {
    expect(usageMessage(() => parseArgs(["--nope"], specs))).toBe("unknown option '--nope'");
    expect(usageMessage(() => parseArgs(["--topic"], specs))).toBe("option '--topic' needs a value");
    expect(usageMessage(() => parseArgs(["--help=yes"], specs))).toBe("option '--help' takes no value");
  });

  test("intFlag, choiceFlag and required check their values", () => {
    expect(intFlag(undefined, "count", 7, 1)).toBe(7);
    expect(intFlag("12", "count", 7, 1)).toBe(12);
    expect(usageMessage(() => intFlag("1.5", "count", 7, 1))).toContain("--count must be a whole number");
    expect(usageMessage(() => intFlag("0", "count", 7, 1))).toContain("in 1..");
    expect(choiceFlag("json", "format", ["text", "json"], "text")).toBe("json");
    expect(usageMessage(() => choiceFlag("xml", "format", ["text", "json"], "text"))).toContain("one of text, json");
    expect(usageMessage(() => required(undefined, "topic"))).toBe("--topic is required");
  });
});

describe("consume --from", () => {
  test("takes earliest, latest, an offset or an ISO time", () => {
    expect(parseFrom(undefined)).toBe("earliest");
    expect(parseFrom("latest")).toBe("latest");
    expect(parseFrom("1500")).toEqual({ offset: 1500 });
    expect(parseFrom("2024-05-01T12:00:00Z")).toEqual({ timestamp: Date.UTC(2024, 4, 1, 12) });
    expect(usageMessage(() => parseFrom("yesterday"))).toContain("--from must be");
  });

  test("takes -N as N messages before the end, never as a date", () => {
    expect(parseFrom("-5")).toEqual({ beforeEnd: 5 });
    expect(parseFrom("-0")).toEqual({ beforeEnd: 0 });
    expect(usageMessage(() => parseFrom("1.5"))).toContain("--from must be");
    expect(usageMessage(() => parseFrom("-5x"))).toContain("--from must be");
  });
});

describe("topics --config", () => {
  test("takes known KEY=VALUE pairs with whole numbers", () => {
    expect(parseConfig(["retention.ms=1000", "flush.messages=1"])).toEqual({ "retention.ms": 1000, "flush.messages": 1 });
    expect(parseConfig([])).toBeUndefined();
    expect(usageMessage(() => parseConfig(["colour=blue"]))).toContain("KEY one of");
    expect(usageMessage(() => parseConfig(["retention.ms=soon"]))).toContain("whole number");
  });
});
