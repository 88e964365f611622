/**
 * @module test/support/tls-certs
 * Makes a throwaway CA and certificates with the system's openssl (Debian's `openssl` package), in
 * a fresh temp dir, for TLS tests: a server certificate for 127.0.0.1/localhost and a client
 * certificate, both signed by the CA; `issueServerCert` makes another (for reload tests).
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

export interface TestPki {
  dir: string;
  caCert: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  /** Signs a new server certificate (new serial) into `<name>.crt` / `<name>.key`. */
  issueServerCert(name: string): { cert: string; key: string };
  /** Signs a client certificate whose subject is `/CN=<name>` (the principal `User:<name>`), into `<name>.crt` / `<name>.key`. */
  issueClientCert(name: string): { cert: string; key: string };
  /** A broker's certificate: for 127.0.0.1/localhost, `/CN=<name>`, good as server and as client certificate (replication over mutual TLS). */
  issueBrokerCert(name: string): { cert: string; key: string };
  cleanup(): void;
}

function openssl(args: string[], cwd: string): void {
  const result = Bun.spawnSync(["openssl", ...args], { cwd, stdout: "pipe", stderr: "pipe" });
  if (result.exitCode !== 0) throw new Error(`openssl ${args.join(" ")} failed: ${result.stderr.toString()}`);
}

function issue(dir: string, name: string, subject: string, extensions: string): { cert: string; key: string } {
  const key = path.join(dir, `${name}.key`);
  const cert = path.join(dir, `${name}.crt`);
  const csr = path.join(dir, `${name}.csr`);
  const ext = path.join(dir, `${name}.ext`);
  fs.writeFileSync(ext, extensions);
  openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", csr, "-subj", subject], dir);
  openssl(["x509", "-req", "-in", csr, "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2", "-out", cert, "-extfile", ext], dir);
  return { cert, key };
}

const SERVER_EXT = "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n";
const CLIENT_EXT = "extendedKeyUsage=clientAuth\n";
const BROKER_EXT = "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n";

export function makeTestPki(): TestPki {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "runnel-tls-"));
  openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=runnel test CA"], dir);
  const server = issue(dir, "server", "/CN=localhost", SERVER_EXT);
  const client = issue(dir, "client", "/CN=test-client", CLIENT_EXT);
  return {
    dir,
    caCert: path.join(dir, "ca.crt"),
    serverCert: server.cert,
    serverKey: server.key,
    clientCert: client.cert,
    clientKey: client.key,
    issueServerCert: (name) => issue(dir, name, `/CN=${name}`, SERVER_EXT),
    issueClientCert: (name) => issue(dir, name, `/CN=${name}`, CLIENT_EXT),
    issueBrokerCert: (name) => issue(dir, name, `/CN=${name}`, BROKER_EXT),
    cleanup: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}

/** The common name of the certificate the TLS server on 127.0.0.1:`port` presents, checked against `pki`'s CA. */
export function peerCommonName(pki: TestPki, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    void Bun.connect({
      hostname: "127.0.0.1",
      port,
      tls: { ca: fs.readFileSync(pki.caCert, "utf8"), serverName: "localhost" },
      socket: {
        data: () => undefined,
        handshake(socket, authorized, error) {
          const subject = socket.getPeerCertificate().subject as unknown as Record<string, string>;
          socket.end();
          if (authorized) resolve(subject.CN ?? "");
          else reject(error);
        },
        connectError: (_socket, error) => reject(error),
      },
    });
  });
}
