/**
 * Runnel quickstart: send three messages, read them back. Start a broker first:
 *   runnel serve            (or: bun src/main.ts serve)
 *   runnel topics create greetings
 * then: bun examples/quickstart.ts   (RUNNEL_BROKER=host:port to point elsewhere)
 */
import { Consumer, Producer } from "runnel/client";

const broker = process.env.RUNNEL_BROKER ?? "127.0.0.1:9600";

const producer = new Producer({ broker });
for (const name of ["Ada", "Grace", "Linus"]) {
  const { partition, offset } = await producer.send("greetings", { key: name, value: `hello, ${name}` });
  console.log(`sent to partition ${partition} at offset ${offset}`);
}
await producer.close();

const consumer = new Consumer({ broker, groupId: "quickstart" }).subscribe("greetings");
let received = 0;
for await (const message of consumer) {
  console.log(`${message.offset}: ${new TextDecoder().decode(message.value!)}`);
  if (++received === 3) break;
}
await consumer.commit();
await consumer.close();
