import { describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import { ERROR_CODES } from "../../src/errors.ts";
import { requestSchemas } from "../../src/protocol/messages.ts";
import { buildExample, PROTOCOL_DOC, renderExample } from "../../scripts/protocol-example.ts";
import { startTestBroker, TestClient } from "../server/helpers.ts";

const doc = fs.readFileSync(PROTOCOL_DOC, "utf8");

describe("docs/protocol.md", () => {
  test("holds exactly the worked example the script generates (run `bun scripts/protocol-example.ts --write` after a change)", () => {
    expect(doc).toContain(renderExample());
  });

  test("a real broker answers the example's requests with exactly the example's response bytes", async () => {
    const example = buildExample();
    await using server = await startTestBroker();
    await using client = await TestClient.connect(server.port);
    await client.request({ op: "createTopic", topic: example.topic, partitions: 1 });
    client.writeRaw(example.produceRequest);
    expect([...(await client.frame(1))]).toEqual([...example.produceResponse.subarray(4)]);
    client.writeRaw(example.fetchRequest);
    expect([...(await client.frame(2))]).toEqual([...example.fetchResponse.subarray(4)]);
  });

  test("lists every error code of src/errors.ts with its retriable flag and meaning", () => {
    for (const [code, entry] of Object.entries(ERROR_CODES)) {
      expect(doc).toContain(`| \`${code}\` | ${entry.retriable ? "yes" : "no"} | ${entry.doc} |`);
    }
  });

  test("documents every operation the broker serves", () => {
    for (const op of Object.keys(requestSchemas)) expect(doc).toContain(`### ${op}\n`);
  });
});
