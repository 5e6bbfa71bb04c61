// Helpers of the TypeScript SDK's tests: the shared fixtures, a registry written by Python,
// and a real `promstack serve` on 127.0.0.1 (started and stopped by the test).
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { after, before } from "node:test";
import { fileURLToPath } from "node:url";

const require = createRequire(import.meta.url);
export const sdk = require("../dist/index.js");
export const HERE = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(HERE, "..", "..");
export const EXAMPLE = path.join(REPO, "example_project");
export const FIXTURES = JSON.parse(readFileSync(path.join(REPO, "tests/data/render/fixtures.json"), "utf8")).cases;
const PYTHON = process.env.PYTHON || "python";
// the repository's own package first, whatever python has installed
const PY_ENV = { ...process.env, PYTHONPATH: [REPO, process.env.PYTHONPATH].filter(Boolean).join(path.delimiter),
  NO_PROXY: "127.0.0.1", no_proxy: "127.0.0.1" };

/** A temporary registry made by test/make_registry.py; `cleanup()` removes it. */
export function makeRegistry() {
  const root = mkdtempSync(path.join(tmpdir(), "promstack-ts-"));
  const made = spawnSync(PYTHON, [path.join(HERE, "make_registry.py"), root], { env: PY_ENV, encoding: "utf8" });
  if (made.status !== 0) throw new Error(`make_registry.py failed: ${made.stderr || made.error}`);
  return { root, cleanup: () => rmSync(root, { recursive: true, force: true }) };
}

/** In the enclosing suite (or file): a registry made before its tests and `promstack serve`
 * on it (with `token`, if given), both gone after them; `ctx.registry.root`, `ctx.server.url`. */
export function servedRegistry(token) {
  const ctx = {};
  before(async () => {
    ctx.registry = makeRegistry();
    ctx.server = await startServe(ctx.registry.root, token);
  });
  after(async () => {
    await ctx.server?.stop();
    ctx.registry?.cleanup();
  });
  return ctx;
}

/** `promstack serve --port 0` in `root`; resolves to { url, stop } once its first line names the address. */
export function startServe(root, token) {
  const env = { ...PY_ENV };
  delete env.PROMSTACK_SERVE_TOKEN;
  if (token) env.PROMSTACK_SERVE_TOKEN = token;
  const child = spawn(PYTHON, ["-c", "import sys; from pytest_promstack.cli import main; sys.exit(main())", "serve",
    "--port", "0"], { cwd: root, env, stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d) => { stderr += d; });
  return new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => { child.kill("SIGTERM"); reject(new Error(`serve did not start: ${stderr}`)); },
      30_000);
    child.stdout.on("data", (d) => {
      out += d;
      const m = /at (http:\/\/127\.0\.0\.1:\d+)\/v1\/prompts/.exec(out.split("\n")[0] + (out.includes("\n") ? "" : ""));
      if (m && out.includes("\n")) {
        clearTimeout(timer);
        const stop = () => new Promise((done) => {
          if (child.exitCode !== null) return done(child.exitCode);
          child.once("exit", (code) => done(code));
          child.kill("SIGTERM");
        });
        resolve({ url: m[1], stop, child });
      }
    });
    child.once("exit", (code) => { clearTimeout(timer); reject(new Error(`serve exited ${code}: ${stderr}`)); });
  });
}

/** Move a label by editing index.json, as `promstack deploy` would. */
export function moveLabel(root, id, label, number) {
  const file = path.join(root, ".promstack/prompts/index.json");
  const index = JSON.parse(readFileSync(file, "utf8"));
  index.prompts[id].labels[label] = number;
  writeFileSync(file, JSON.stringify(index, null, 1) + "\n");
}
