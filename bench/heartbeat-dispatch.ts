/**
 * @module bench/heartbeat-dispatch
 * Scratch: the broker's cost of one heartbeat request, in process (dispatch: decode, schema,
 * coordinator, answer encoding), with 1000 members in one group.
 */
import { encode } from "@msgpack/msgpack";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { configSchema } from "../src/config.ts";
import { silentLogger } from "../src/logger.ts";
import { startBroker } from "../src/server/broker.ts";
import { dispatch } from "../src/server/dispatch.ts";
import { createRequestDecoder } from "../src/protocol/messages.ts";

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "runnel-hb-"));
const config = configSchema.parse({ port: 0, httpPort: -1, logLevel: "silent", dataDir });
const broker = await startBroker({ config, logger: silentLogger() });
const context = broker.context;
await context.log.createTopicAsync("cpu", { partitions: 100 });
const members: Array<{ memberId: string; memberEpoch: number; owned: unknown }> = [];
for (let index = 0; index < 1000; index++) {
  const answer = context.groups.join({ group: "g", topics: ["cpu"], clientId: "c" } as never);
  members.push({ memberId: answer.memberId, memberEpoch: answer.memberEpoch, owned: answer.assigned });
}
// settle
for (let round = 0; round < 5; round++) {
  for (const member of members) {
    const answer = context.groups.heartbeat({ group: "g", memberId: member.memberId, memberEpoch: member.memberEpoch, owned: member.owned, waitMs: 0 } as never);
    member.memberEpoch = answer.memberEpoch;
    member.owned = answer.assigned;
  }
}
const bodies = members.map((member, index) => encode({ id: index + 1, op: "heartbeat", group: "g", memberId: member.memberId, memberEpoch: member.memberEpoch, owned: member.owned, waitMs: 0 }));
const decode = createRequestDecoder(config.frameBytesMax);
const rounds = 50;
const startMs = performance.now();
for (let round = 0; round < rounds; round++) for (const body of bodies) dispatch(context, decode, body);
const perCallUs = ((performance.now() - startMs) * 1000) / (rounds * bodies.length);
console.log(`dispatch of one heartbeat: ${perCallUs.toFixed(1)} us`);
await broker.stop();
fs.rmSync(dataDir, { recursive: true, force: true });
