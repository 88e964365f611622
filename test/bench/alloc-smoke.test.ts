/**
 * The allocation benchmark (bench/alloc.bench.ts) at a smoke size, so it never rots, and as a guard on
 * what it measures: counts of heap objects, not timings, so they hold on a busy machine. The
 * bounds sit a little above what the data path allocates today (broker dispatch: about 8 objects
 * per produce and 11 per fetch, down from 25 and 21 and then 15 and 15; a Producer round trip
 * about 40, down from 97 and then 86; a Consumer fetch about 46, from 96), so a closure or view that creeps back into the
 * per-request path fails here with the types that grew.
 */
import { expect, test } from "bun:test";
import { measureAllocations } from "../../bench/alloc.bench.ts";

const BROKER_OBJECTS_PER_REQUEST_MAX = 14;
/** Producer send -> ack, both socket sides and the broker included. */
const PRODUCER_ROUND_TRIP_OBJECTS_MAX = 55;

test("the broker's produce and fetch dispatch allocate a bounded, small number of objects per request", async () => {
  const figures = await measureAllocations({ requests: 200 });
  expect(figures.map((figure) => figure.name.split(":")[0])).toEqual(["broker", "broker", "round trip", "round trip"]);
  for (const figure of figures.slice(0, 2)) {
    expect({ name: figure.name, objectsPerRequest: figure.objectsPerRequest, within: figure.objectsPerRequest <= BROKER_OBJECTS_PER_REQUEST_MAX, types: figure.topTypes }).toMatchObject({ within: true });
  }
  // No function objects or closure scopes per request on the broker's side.
  for (const figure of figures.slice(0, 2)) {
    const perType = new Map(figure.topTypes);
    expect(perType.get("Function") ?? 0).toBeLessThan(0.5);
    expect(perType.get("JSLexicalEnvironment") ?? 0).toBeLessThan(0.5);
  }
  for (const figure of figures.slice(2)) expect(figure.objectsPerRequest).toBeGreaterThan(0);
  // The producer's request, its answer and the connection's records are reused (client/produce-request.ts, answer-readers.ts).
  const producer = figures[2]!;
  expect({ objectsPerRequest: producer.objectsPerRequest, within: producer.objectsPerRequest <= PRODUCER_ROUND_TRIP_OBJECTS_MAX, types: producer.topTypes }).toMatchObject({ within: true });
}, 30_000);
