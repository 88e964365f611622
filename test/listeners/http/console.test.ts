/**
 * The console in a real browser (headless Debian Chromium, test/support/chromium.ts): among a
 * thousand topics it finds the one the test created by search, its throughput chart moves while
 * a producer runs, the message browser shows a message the test produced, as text and hex, and
 * a topic created with the page's form appears in the list.
 * Skips, saying why, only where Chromium is not installed and CI is not "true".
 *
 * RUNNEL_CONSOLE_SCREENSHOT=FILE also saves a screenshot (docs/console.png is made this way).
 */
import { expect, test } from "bun:test";
import * as fs from "node:fs";
import { Producer } from "../../../src/client/producer.ts";
import { CHROMIUM, HeadlessPage } from "../../support/chromium.ts";
import { startTestBroker } from "../../server/helpers.ts";
import { Consumer } from "../../../src/client/consumer.ts";

const OTHER_TOPICS = 1_000;

test("the console finds a topic among a thousand, charts its throughput live, shows its messages, and creates a topic", async () => {
  if (CHROMIUM === null) {
    if (process.env.CI === "true") throw new Error("chromium is required in CI (apt-get install chromium; .ci/run installs it)");
    console.log("skipped: no chromium on PATH (Debian: apt-get install chromium); .ci/run installs it");
    return;
  }
  await using running = await startTestBroker();
  const http = running.broker.http;
  if (http === null) throw new Error("the HTTP listener is off");
  for (let index = 0; index < OTHER_TOPICS; index++) running.broker.context.log.createTopic(`bulk-${String(index).padStart(4, "0")}`, { partitions: 1 });
  running.broker.context.log.createTopic("payments", { partitions: 2 });
  const producer = new Producer({ broker: `127.0.0.1:${running.port}`, lingerMs: 0 });
  let producing = true;
  try {
    await producer.send("payments", { key: "order-7", value: "hello from the console test", partition: 0 });
    const consumer = new Consumer({ broker: `127.0.0.1:${running.port}`, groupId: "ledger" }).assign([{ topic: "payments", partition: 0 }]);
    await consumer.commit([{ topic: "payments", partition: 0, offset: 1 }]);
    await consumer.close();

    await using page = await HeadlessPage.launch({ widthPx: 1280, heightPx: 1100 });
    await page.goto(`http://${http.host}:${http.port}/?pollMs=250`);
    await page.waitFor(`document.querySelector("#topic-count")?.textContent === "(${OTHER_TOPICS + 1})"`, "the topic count");
    expect(await page.evaluate<number>(`document.querySelectorAll("#topics tr").length`)).toBe(50);

    await page.evaluate(`(() => { const box = document.querySelector("#topic-search"); box.value = "paym"; box.dispatchEvent(new Event("input")); })()`);
    await page.waitFor(`document.querySelector('#topics tr[data-topic="payments"]') && document.querySelectorAll("#topics tr").length === 1`, "the search to find payments");
    await page.evaluate(`document.querySelector('#topics tr[data-topic="payments"]').click()`);
    await page.waitFor(`document.querySelector("#chart-title").textContent === "payments"`, "the chart to follow payments");

    const background = (async () => {
      let index = 0;
      while (producing) await producer.send("payments", { value: `tick ${index++}`, partition: 1 });
    })();
    await page.waitFor(`Number(document.querySelector("#chart").dataset.peakRate) > 0 && Number(document.querySelector("#chart").dataset.points) >= 3`, "the chart to move", 20_000);
    // For the README's screenshot: a few seconds more of traffic, so the chart has a shape.
    if ((process.env.RUNNEL_CONSOLE_SCREENSHOT ?? "") !== "") await Bun.sleep(6_000);
    producing = false;
    await background;
    const behind = new Consumer({ broker: `127.0.0.1:${running.port}`, groupId: "ledger" }).assign([{ topic: "payments", partition: 1 }]);
    await behind.commit([{ topic: "payments", partition: 1, offset: 1 }]);
    await behind.close();
    expect(await page.evaluate<string>(`document.querySelector("#chart path")?.getAttribute("d") ?? ""`)).toContain("L");
    await page.waitFor(`[...document.querySelectorAll("#groups tr")].some((tr) => tr.textContent.includes("payments / 1"))`, "the group's lag rows");
    // partition 1 holds the background producer's messages; the group committed offset 1 of them
    const lagText = await page.evaluate<string>(`[...document.querySelectorAll("#groups tr")].find((tr) => tr.textContent.includes("payments / 1")).lastElementChild.textContent`);
    expect(Number(lagText.replaceAll(",", ""))).toBeGreaterThan(0);

    await page.evaluate(`(() => { document.querySelector("#browse-topic").value = "payments"; document.querySelector("#browse-partition").value = "0"; document.querySelector("#browse-offset").value = "0"; document.querySelector("#browse").requestSubmit(); })()`);
    await page.waitFor(`document.querySelector("#messages").textContent.includes("hello from the console test")`, "the produced message in the browser");
    expect(await page.evaluate<string>(`document.querySelector('#messages tr[data-offset="0"]').textContent`)).toContain("order-7");
    await page.evaluate(`(() => { const format = document.querySelector("#browse-format"); format.value = "hex"; format.dispatchEvent(new Event("change")); })()`);
    // "hello" in hex
    await page.waitFor(`document.querySelector("#messages").textContent.includes("68 65 6c 6c 6f")`, "the message as hex");
    await page.evaluate(`(() => { const format = document.querySelector("#browse-format"); format.value = "text"; format.dispatchEvent(new Event("change")); })()`);
    await page.waitFor(`document.querySelector("#messages").textContent.includes("hello from the console test")`, "the message as text again");

    const screenshotFile = process.env.RUNNEL_CONSOLE_SCREENSHOT;
    if (screenshotFile !== undefined && screenshotFile !== "") fs.writeFileSync(screenshotFile, await page.screenshotPng());

    // Creating a topic from the page: it appears in the list.
    await page.evaluate(`(() => { document.querySelector("#create-name").value = "made-in-browser"; document.querySelector("#create-partitions").value = "2"; document.querySelector("#create").requestSubmit(); })()`);
    await page.waitFor(`document.querySelector("#create-status").textContent === "created made-in-browser"`, "the create form to report success");
    await page.evaluate(`(() => { const box = document.querySelector("#topic-search"); box.value = "made-in"; box.dispatchEvent(new Event("input")); })()`);
    await page.waitFor(`document.querySelector('#topics tr[data-topic="made-in-browser"]')`, "the new topic in the list");
    expect(running.broker.context.log.describeTopic("made-in-browser").partitions).toHaveLength(2);
  } finally {
    producing = false;
    await producer.close();
  }
}, 60_000);
