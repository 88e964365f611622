/**
 * The README's client example (examples/quickstart.ts) run as-is against a real broker, so
 * the code the README shows is proven to work.
 */
import { expect, test } from "bun:test";
import fs from "node:fs";
import path from "node:path";
import { Admin } from "../../src/client/index.ts";
import { ROOT, startRealBroker } from "./real-broker.ts";

test("examples/quickstart.ts sends three greetings and reads them back", async () => {
  const broker = await startRealBroker();
  try {
    const admin = new Admin({ broker: broker.address });
    await admin.createTopic("greetings");
    const child = Bun.spawn([process.execPath, path.join(ROOT, "examples/quickstart.ts")], {
      cwd: ROOT,
      env: { ...process.env, RUNNEL_BROKER: broker.address },
      stdout: "pipe",
      stderr: "pipe",
    });
    const [stdout, stderr, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
    expect(stderr).toBe("");
    expect(code).toBe(0);
    expect(stdout).toBe(
      [
        "sent to partition 0 at offset 0",
        "sent to partition 0 at offset 1",
        "sent to partition 0 at offset 2",
        "0: hello, Ada",
        "1: hello, Grace",
        "2: hello, Linus",
        "",
      ].join("\n"),
    );
    const [committed] = await admin.committedOffsets("quickstart", [{ topic: "greetings", partition: 0 }]);
    expect(committed!.offset).toBe(3);
    await admin.close();
  } finally {
    expect(await broker.stop()).toBe(0);
    fs.rmSync(broker.dataDir, { recursive: true, force: true });
  }
}, 20_000);
