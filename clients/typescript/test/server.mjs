// A real Foothills server for the kit's tests: `foothills-rpc serve` from the repository's Python
// environment, on an embedded SQLite file in a scratch folder, seeded with a small demo catalog.
import { execFile, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";

const ROOT = resolve(import.meta.dirname, "../../..");
const CLI = join(ROOT, ".venv", "bin", "foothills-rpc");
export const DEMO_PASSWORD = "demo password 2030";

async function freePort() {
  return await new Promise((done, fail) => {
    const probe = createServer().listen(0, "127.0.0.1", () => {
      const { port } = probe.address();
      probe.close(() => done(port));
    }).on("error", fail);
  });
}

/** Starts a seeded server; `accessTokenSeconds` short, so tests see tokens expire. It answers the demo
 * accounts' emails (their password is DEMO_PASSWORD) and its `baseUrl`. */
export async function startServer({ accessTokenSeconds = 3 } = {}) {
  const folder = await mkdtemp(join(tmpdir(), "foothills-kit-"));
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith("FOOTHILLS_")));
  Object.assign(env, {
    FOOTHILLS_DATABASE_URL: `sqlite:///${join(folder, "kit.db")}`,
    FOOTHILLS_ARGON2_MEMORY_KIB: "64", FOOTHILLS_ARGON2_TIME_COST: "1",
    FOOTHILLS_OUTBOX_DIR: join(folder, "outbox"), FOOTHILLS_LOG_LEVEL: "WARNING",
    FOOTHILLS_ACCESS_TOKEN_TTL_SECONDS: String(accessTokenSeconds),
  });
  const seeded = await promisify(execFile)(CLI, ["seed-demo", "--services", "6", "--users", "3", "--bookings", "0"],
                                           { env, cwd: folder, timeout: 120_000 });
  const [, customer, provider, admin] = seeded.stdout.match(/try (\S+), the provider (\S+) or the admin (\S+)\)/);
  const port = await freePort();
  const child = spawn(CLI, ["serve", "--listen", `127.0.0.1:${port}`], { env, cwd: folder, stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (chunk) => { stderr += chunk; });
  const baseUrl = `http://127.0.0.1:${port}`;
  await waitUntilListening(port, child, () => stderr);
  return {
    baseUrl, customer, provider, admin,
    async stop() {
      child.kill("SIGTERM");
      await new Promise((done) => child.once("exit", done));
      await rm(folder, { recursive: true, force: true });
    },
  };
}

async function waitUntilListening(port, child, stderr) {
  const deadline = Date.now() + 90_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`the server exited: ${stderr()}`);
    const open = await new Promise((done) => {
      const socket = createServer();
      socket.once("error", () => done(true)).listen(port, "127.0.0.1", () => socket.close(() => done(false)));
    });
    if (open) return;
    await new Promise((done) => setTimeout(done, 100));
  }
  throw new Error(`the server did not listen within 90 s: ${stderr()}`);
}
