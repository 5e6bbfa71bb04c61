// Issue 17's figure, TypeScript side: getPrompt by label, cold and cached (and revalidated after
// the label's TTL), from the registry's files and from a real `promstack serve`, side by side;
// then Python's benchmarks/bench_get_prompt.py on the same machine for comparison.
//
//     npm --prefix sdk-ts run bench            (REPEAT=200 by default; PYTHON=python)
//
// cold: a new Client and its first getPrompt({ id: "support", label: "production" }) (reads the
// index and the version file, or two HTTP requests); cached: the same call within the TTL (no
// reading); revalidated: the call after the TTL, the version kept (files: the index again;
// HTTP: one request answered 304 by its ETag). Medians, in microseconds.
import { spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { EXAMPLE, REPO, sdk, startServe } from "../test/support.mjs";

const REPEAT = Number(process.env.REPEAT || 200);
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return (s[(s.length - 1) >> 1] + s[s.length >> 1]) / 2; };

async function measure(make) {
  const cold = [], cached = [], revalidated = [];
  for (let i = 0; i < REPEAT; i++) {
    let now = 0;
    let t = performance.now();
    const client = make(() => now);
    await client.getPrompt({ id: "support", label: "production" });
    cold.push(performance.now() - t);
    t = performance.now();
    await client.getPrompt({ id: "support", label: "production" });
    cached.push(performance.now() - t);
    now = 3600; // past the TTL: the label is read again
    t = performance.now();
    await client.getPrompt({ id: "support", label: "production" });
    revalidated.push(performance.now() - t);
  }
  return { cold: median(cold) * 1000, cached: median(cached) * 1000, revalidated: median(revalidated) * 1000 };
}

const root = mkdtempSync(path.join(tmpdir(), "promstack-bench-"));
cpSync(path.join(EXAMPLE, ".promstack", "prompts"), path.join(root, ".promstack", "prompts"), { recursive: true });
const server = await startServe(root);
let rows;
try {
  await measure((clock) => new sdk.Client({ root, clock })); // warm-up: JIT, module loading
  rows = {
    files: await measure((clock) => new sdk.Client({ root, clock })),
    "promstack serve": await measure((clock) => new sdk.Client({ url: server.url, clock })),
  };
} finally {
  await server.stop();
  rmSync(root, { recursive: true, force: true });
}
console.log(`TypeScript (node ${process.version}): getPrompt({ id: "support", label: "production" }), medians of ` +
  `${REPEAT} rounds (µs)`);
console.log(`  ${"source".padEnd(18)}${"cold".padStart(10)}${"cached".padStart(10)}${"revalidated".padStart(13)}`);
for (const [name, r] of Object.entries(rows)) {
  console.log(`  ${name.padEnd(18)}${r.cold.toFixed(0).padStart(10)}${r.cached.toFixed(1).padStart(10)}` +
    `${r.revalidated.toFixed(0).padStart(13)}`);
}
const python = spawnSync(process.env.PYTHON || "python", [path.join(REPO, "benchmarks", "bench_get_prompt.py"),
  "--repeat", String(REPEAT)], { encoding: "utf8", env: { ...process.env, PYTHONPATH: REPO } });
console.log(python.status === 0 ? `Python: ${python.stdout.trim()}` : `Python's benchmark failed: ${python.stderr}`);
