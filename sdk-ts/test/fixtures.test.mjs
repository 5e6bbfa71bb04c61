// Issue 17, item 4: every case of tests/data/render/fixtures.json renders to the same messages
// from the TypeScript SDK, reading the registry's files and reading a real `promstack serve`.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { FIXTURES, sdk, servedRegistry } from "./support.mjs";

const served = servedRegistry();

for (const mode of ["root", "url"]) {
  describe(`the shared render fixtures, ${mode} mode`, () => {
    for (const c of FIXTURES) {
      test(c.name, async () => {
        const client = mode === "root" ? new sdk.Client({ root: served.registry.root })
          : new sdk.Client({ url: served.server.url });
        const prompt = await client.getPrompt({ id: c.prompt.id, version: 1 });
        assert.equal(prompt.id, String(c.prompt.id));
        assert.equal(prompt.number, 1);
        if (c.error) {
          assert.throws(() => prompt.render(c.variables), (err) => {
            assert.ok(err instanceof sdk.TemplateError && err instanceof sdk.PromstackError);
            assert.match(err.message, new RegExp(c.error));
            return true;
          });
        } else {
          assert.deepEqual(prompt.render(c.variables), c.messages);
        }
      });
    }
  });
}
