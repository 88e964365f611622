/**
 * kcat (librdkafka's command-line client, Debian `kcat`) for the tests that drive the Kafka
 * listener with a real client: where it is, and one bounded run of it against 127.0.0.1.
 */

/** The kcat binary, or null; in CI it is required (.ci/run installs it), elsewhere its tests skip loudly. */
export function kcatOrSkip(what: string): string | null {
  const found = Bun.which("kcat");
  if (found === null) {
    if (process.env.CI === "true") throw new Error(`kcat is required in CI for ${what} (apt-get install kcat)`);
    console.warn(`skipping ${what}: kcat is not installed (apt-get install kcat)`);
  }
  return found;
}

export interface KcatRun {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `kcat -b 127.0.0.1:<port> -m <waitSeconds> <args>`, feeding `stdin` when given; killed
 * after 30 s whatever it does. `waitSeconds` is kcat's metadata timeout: keep it short where the
 * run is meant to fail (kcat waits it out).
 */
export async function runKcat(port: number | null, args: readonly string[], options: { stdin?: string; waitSeconds?: number } = {}): Promise<KcatRun> {
  const child = Bun.spawn([Bun.which("kcat") ?? "kcat", "-b", `127.0.0.1:${port}`, "-m", String(options.waitSeconds ?? 10), ...args], {
    stdin: options.stdin === undefined ? "ignore" : new Blob([options.stdin]),
    stdout: "pipe",
    stderr: "pipe",
  });
  const timer = setTimeout(() => child.kill(), 30_000);
  const [stdout, stderr, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  clearTimeout(timer);
  return { code, stdout, stderr };
}
