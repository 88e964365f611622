/**
 * @module test/support/chromium
 * Test support: the system's Chromium (Debian `chromium`), headless, driven over the DevTools
 * protocol with Bun's own WebSocket — no puppeteer, nothing that downloads a browser. Enough for
 * a test: open a page, evaluate an expression, wait for a condition in the page, screenshot.
 */
import type { Subprocess } from "bun";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

export const CHROMIUM = ["chromium", "chromium-browser", "google-chrome"].map((name) => Bun.which(name)).find((found) => found !== null) ?? null;

type Pending = { resolve: (value: Record<string, unknown>) => void; reject: (error: Error) => void };

export class HeadlessPage implements AsyncDisposable {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();

  private constructor(
    private readonly child: Subprocess,
    private readonly socket: WebSocket,
    private readonly profileDir: string,
  ) {
    socket.onmessage = (event) => {
      const message = JSON.parse(String(event.data)) as { id?: number; result?: Record<string, unknown>; error?: { message: string } };
      if (message.id === undefined) return;
      const waiter = this.pending.get(message.id);
      this.pending.delete(message.id);
      if (message.error !== undefined) waiter?.reject(new Error(message.error.message));
      else waiter?.resolve(message.result ?? {});
    };
  }

  /** Starts Chromium and attaches to its first page. */
  static async launch(options: { widthPx?: number; heightPx?: number; startTimeoutMs?: number } = {}): Promise<HeadlessPage> {
    if (CHROMIUM === null) throw new Error("no chromium on PATH");
    const profileDir = fs.mkdtempSync(path.join(os.tmpdir(), "runnel-chromium-"));
    const size = `${options.widthPx ?? 1280},${options.heightPx ?? 900}`;
    const child = Bun.spawn(
      [CHROMIUM, "--headless", "--disable-gpu", "--no-sandbox", "--no-first-run", "--remote-debugging-port=0", `--user-data-dir=${profileDir}`, `--window-size=${size}`, "about:blank"],
      { stdin: "ignore", stdout: "ignore", stderr: "pipe" },
    );
    try {
      const browserUrl = await readDevToolsUrl(child, options.startTimeoutMs ?? 20_000);
      const port = new URL(browserUrl).port;
      const targets = (await (await fetch(`http://127.0.0.1:${port}/json/list`)).json()) as Array<{ type: string; webSocketDebuggerUrl: string }>;
      const target = targets.find((candidate) => candidate.type === "page");
      if (target === undefined) throw new Error("chromium has no page target");
      const socket = new WebSocket(target.webSocketDebuggerUrl);
      await new Promise<void>((resolve, reject) => {
        socket.onopen = () => resolve();
        socket.onerror = () => reject(new Error("cannot connect to chromium's DevTools socket"));
      });
      const page = new HeadlessPage(child, socket, profileDir);
      // A fixed layout viewport: screenshots and layouts then do not depend on scrollbars.
      await page.send("Emulation.setDeviceMetricsOverride", { width: options.widthPx ?? 1280, height: options.heightPx ?? 900, deviceScaleFactor: 1, mobile: false });
      return page;
    } catch (error) {
      child.kill("SIGKILL");
      await child.exited;
      fs.rmSync(profileDir, { recursive: true, force: true });
      throw error;
    }
  }

  send(method: string, params: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.socket.send(JSON.stringify({ id, method, params }));
    });
  }

  async goto(url: string): Promise<void> {
    await this.send("Page.enable");
    await this.send("Page.navigate", { url });
  }

  /** The value of `expression` evaluated in the page (promises awaited). */
  async evaluate<T>(expression: string): Promise<T> {
    const answer = await this.send("Runtime.evaluate", { expression, returnByValue: true, awaitPromise: true });
    const exception = answer.exceptionDetails as { text?: string; exception?: { description?: string } } | undefined;
    if (exception !== undefined) throw new Error(`page threw: ${exception.exception?.description ?? exception.text ?? "?"}`);
    return (answer.result as { value: T }).value;
  }

  /** Resolves once `expression` is truthy in the page; rejects after `timeoutMs` saying what. */
  async waitFor(expression: string, what: string, timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await this.evaluate<boolean>(`Boolean(${expression})`).catch(() => false))) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await Bun.sleep(50);
    }
  }

  async screenshotPng(): Promise<Uint8Array> {
    const answer = await this.send("Page.captureScreenshot", { format: "png" });
    return Buffer.from(String(answer.data), "base64");
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.socket.close();
    this.child.kill("SIGKILL");
    await this.child.exited;
    fs.rmSync(this.profileDir, { recursive: true, force: true });
  }
}

/** Reads stderr until "DevTools listening on ws://..." appears. */
async function readDevToolsUrl(child: Subprocess, timeoutMs: number): Promise<string> {
  const stderr = child.stderr;
  if (!(stderr instanceof ReadableStream)) throw new Error("chromium's stderr is not piped");
  const reader = stderr.getReader();
  const decoder = new TextDecoder();
  let seen = "";
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`chromium exited before listening: ${seen.slice(-500)}`);
      seen += decoder.decode(value, { stream: true });
      const match = /DevTools listening on (ws:\/\/\S+)/.exec(seen);
      if (match !== null) return match[1] as string;
    }
  } finally {
    clearTimeout(timer);
    reader.releaseLock();
    // Keep draining stderr so chromium never blocks on a full pipe.
    void stderr.pipeTo(new WritableStream()).catch(() => undefined);
  }
}
