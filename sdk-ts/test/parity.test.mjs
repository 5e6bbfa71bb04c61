// A template the TypeScript SDK renders gives Python's text, or it is a TemplateError: never a
// different text. Each case is rendered by Python (test/render_python.py) and by the SDK.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as path from "node:path";
import { test } from "node:test";
import { HERE, REPO } from "./support.mjs";
import { createRequire } from "node:module";

const { compileTemplate } = createRequire(import.meta.url)("../dist/template.js");

// [template, variables, true when the SDK must render it (the supported subset)]
const CASES = [
  ["{{ a }} {{ b }} {{ c }} {{ d }} {{ e }}", { a: true, b: false, c: null, d: 2.5, e: 1e-7 }, true],
  ["{{ n }} {{ big }}", { n: 3, big: 9007199254740992 }, true],
  ["{% if items %}yes{% else %}no{% endif %}/{% if m %}m{% endif %}", { items: [], m: {} }, true],
  ["{{ x == 1 }} {{ x != 1 }} {{ 1 == 1 }} {{ 'b' > 'a' }} {{ 2 < 10 }}", { x: "1" }, true],
  ["{{ a or b }}|{{ a and b }}|{{ not a }}|{{ z or 'e' }}", { a: "", b: "B", z: [] }, true],
  ["{% for c in s %}[{{ c }}]{% endfor %} {{ s | length }} {{ s | first }} {{ s | last }}", { s: "한글😀" }, true],
  ["{% for k in d %}{{ k }}={{ d[k] }};{% endfor %}", { d: { b: 1, a: 2 } }, true],
  ["{% for i in range(1, 7, 2) %}{{ loop.index }}:{{ i }}{% if not loop.last %},{% endif %}{% endfor %}", {}, true],
  ["{% for i in [] %}x{% else %}empty{% endfor %}", {}, true],
  ["{{ s | upper }} {{ s | lower }} {{ s | capitalize }} {{ s | title }}", { s: "hello wORLD-x (y)" }, true],
  ["[{{ s | trim }}] {{ s | replace('a', 'ㅁ') }} {{ 'ab' | replace('', '-') }}", { s: "  banana \n" }, true],
  ["{{ xs | join(', ') }} {{ xs | join }}", { xs: [1, true, null, "가"] }, true],
  ["{{ who | default('고객') }} {{ e | default('빈', true) }} {{ e | d('x') }}", { e: "" }, true],
  ["{{ u.name | default('?') }} {{ u.age is defined }} {{ u is defined }}", { u: { name: "김" } }, true],
  ["{% set greeting = '안녕' ~ ' ' ~ name %}{{ greeting }}!", { name: "김" }, true],
  ["{{ 'a' if x else 'b' }}{{ 'k' in d }}{{ 3 in xs }}", { x: 0, d: { k: 1 }, xs: [1, 2, 3] }, true],
  ["{{ xs[0] }}{{ xs[-1] }}{{ d['k'] }}{{ d.k }}", { xs: [1, 2], d: { k: "v" } }, true],
  ["  line 1\n{%- if t %}\n  t{% endif -%}\n  end\n", { t: true }, true],
  ["{# comment #}{% raw %}{{ not rendered }}{% endraw %}", {}, true],
  ["{{ x is none }} {{ n is odd }} {{ n is even }} {{ n is divisibleby(3) }} {{ s is string }}",
    { x: null, n: 9, s: "" }, true],
  // refused or an error in the SDK; where it renders, Python must agree
  ["{% if missing %}x{% endif %}", {}, false],
  ["{{ u.nope }}", { u: {} }, false],
  ["{{ xs[5] }}", { xs: [] }, false],
  ["{{ xs }}", { xs: [1] }, false],
  ["{{ 4 / 2 }} {{ 1 + 1 }}", {}, false],
  ["{{ 1.0 }}", {}, false],
  ["{{ s.upper() }}", { s: "a" }, false],
  ["{{ s | wordcount }}", { s: "a b" }, false],
  ["{{ x | round }}", { x: 2.5 }, false],
  ["{% macro m() %}x{% endmacro %}{{ m() }}", {}, false],
  ["{{ q is none }}", {}, false],
  ["{{ 1 < 'a' }}", {}, false],
  ["{{ d | length }} {{ d | join(',') }}", { d: { a: 1, b: 2 } }, false],
];

test("every template renders as Python renders it, or is a TemplateError", () => {
  const python = spawnSync(process.env.PYTHON || "python", [path.join(HERE, "render_python.py")], {
    input: JSON.stringify(CASES.map(([t, v]) => [t, v])), encoding: "utf8",
    env: { ...process.env, PYTHONPATH: [REPO, process.env.PYTHONPATH].filter(Boolean).join(path.delimiter) },
  });
  assert.equal(python.status, 0, python.stderr);
  const expected = JSON.parse(python.stdout);
  CASES.forEach(([template, variables, supported], i) => {
    let ours;
    try {
      ours = { text: compileTemplate(template, "t").render(variables) };
    } catch (err) {
      assert.equal(err.name, "TemplateError", `${template}: ${err}`);
      ours = { error: err.message };
    }
    if (supported) {
      assert.deepEqual(ours, expected[i], `${template}: the SDK must render it as Python does`);
    } else if ("text" in ours) {
      assert.deepEqual(ours, expected[i], `${template}: rendered, so it must be Python's text`);
    }
  });
});
