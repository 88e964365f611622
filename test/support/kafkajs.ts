/**
 * kafkajs (an npm devDependency) for the tests that drive the Kafka listener with it, loaded by a
 * name held in a variable so the type check does not need the package: each test file declares
 * the slice of its API it uses.
 */
const KAFKAJS = "kafkajs";

/** The kafkajs module, or null (its tests then skip loudly); in CI it is required. */
export async function loadKafkajs<Module>(what: string): Promise<Module | null> {
  try {
    return (await import(KAFKAJS)) as Module;
  } catch {
    if (process.env.CI === "true") throw new Error(`kafkajs is required in CI for ${what} (npm install)`);
    console.warn(`skipping ${what}: the kafkajs package is not installed (npm install)`);
    return null;
  }
}
