// The TypeScript SDK's Client: the example project's registry, numeric and encoded ids, hashes
// checked, label TTL, tokens, redirects, ETags and one-line errors, from files and from serve.
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { readFileSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { describe, test } from "node:test";
import { EXAMPLE, makeRegistry, moveLabel, sdk, servedRegistry, startServe } from "./support.mjs";

const { Client, PromstackError } = sdk;

function rejects(promise, pattern) {
  return assert.rejects(promise, (err) => {
    assert.ok(err instanceof PromstackError, `not a PromstackError: ${err}`);
    assert.match(err.message, pattern);
    assert.ok(!err.message.includes("\n"), "one line");
    return true;
  });
}

/** A small HTTP server on 127.0.0.1 answering with `handler`; resolves to { url, close, seen }. */
function fakeServer(handler) {
  const seen = [];
  const server = createServer((req, res) => { seen.push(req); handler(req, res); });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve({
    url: `http://127.0.0.1:${server.address().port}`, seen, close: () => new Promise((r) => server.close(r)),
  })));
}

test("the example project's registry: support by its production label, the latest without one", async () => {
  const client = new Client({ root: EXAMPLE });
  const support = await client.getPrompt({ id: "support" });
  assert.equal(support.number, 1);
  assert.deepEqual(support.labels, ["production"]);
  assert.equal(support.hash, "b48d6902");
  const messages = support.render({ input: "환불하고 싶어요" });
  assert.equal(messages[0].role, "system");
  assert.match(messages[0].content, /고객 지원 상담원/);
  assert.deepEqual(messages[1], { role: "user", content: "환불하고 싶어요" });
  assert.deepEqual(await client.getPrompt({ id: "support", label: "production" }), support);
  const facts = await client.getPrompt({ id: "facts" });
  assert.deepEqual(facts.labels, []);
  assert.deepEqual(facts.render({ question: "q" }), [{ role: "user", content: "q" }]);
});

test("unknown prompts, versions and labels name the known ones; version and label together are refused", async () => {
  const client = new Client({ root: EXAMPLE });
  await rejects(client.getPrompt({ id: "nope" }), /prompt "nope" is not in the registry .*known: facts, support/);
  await rejects(client.getPrompt({ id: "support", version: 7 }), /has no version 7 \(versions 1 to 1\)/);
  await rejects(client.getPrompt({ id: "support", label: "staging" }), /no label "staging" \(labels: production\)/);
  await rejects(client.getPrompt({ id: "support", version: 1, label: "production" }), /version or label, not both/);
  await rejects(new Client({ root: "/nonexistent" }).getPrompt({ id: "support" }), /no prompt registry at/);
});

describe("a registry written by Python, from files and from promstack serve", () => {
  const served = servedRegistry();

  for (const mode of ["root", "url"]) {
    const client = (options = {}) => new Client(mode === "root" ? { root: served.registry.root, ...options }
      : { url: served.server.url, ...options });

    test(`${mode}: hashes agree with Python for floats, non-ASCII keys, tools, a text file and an encoded id`,
      async () => {
        const c = client();
        const params = await c.getPrompt({ id: "params" });
        assert.equal(params.model, "openai/gpt-4o-mini");
        assert.equal(params.params.temperature, 1);
        assert.deepEqual(params.params.stop, ["\n", "끝"]);
        assert.deepEqual(params.params["메타"], { "키": "값", b: true, n: null });
        const tools = await c.getPrompt({ id: "tools" });
        assert.equal(tools.params.tools[0].function.name, "get_weather");
        assert.deepEqual(tools.params.response_format, { type: "json_object" });
        const letter = await c.getPrompt({ id: "letter" });
        assert.deepEqual(letter.render({ name: "김" }), [{ role: "user", content: "안녕하세요 김님,\n주문이 접수되었습니다.\n" }]);
        const team = await c.getPrompt({ id: "팀/요약 v2", version: 1 });
        assert.deepEqual(team.render({ text: "x" }), [{ role: "user", content: "요약: x" }]);
        const numeric = await c.getPrompt({ id: 42, version: 1 });
        assert.equal(numeric.id, "42");
        assert.deepEqual(numeric.render({ name: "Kim" }), [{ role: "user", content: "Answer Kim." }]);
      });

    test(`${mode}: a label is re-read after labelTtl seconds, a version is kept`, async () => {
      let now = 0;
      const c = client({ labelTtl: 60, clock: () => now });
      assert.equal((await c.getPrompt({ id: "moving" })).number, 1);
      moveLabel(served.registry.root, "moving", "production", 2);
      try {
        now = 59;
        const cached = await c.getPrompt({ id: "moving", label: "production" });
        assert.equal(cached.number, 1);
        now = 61;
        const moved = await c.getPrompt({ id: "moving" });
        assert.equal(moved.number, 2);
        assert.deepEqual(moved.render({ x: "!" }), [{ role: "user", content: "두 번째 !" }]);
        assert.equal((await c.getPrompt({ id: "moving", version: 1 })).render({ x: "?" })[0].content, "첫 번째 ?");
      } finally {
        moveLabel(served.registry.root, "moving", "production", 1);
      }
    });

    test(`${mode}: unknown prompt, version and label are one PromstackError naming the known ones`, async () => {
      const c = client();
      await rejects(c.getPrompt({ id: "nope" }), /prompt '?"?nope'?"? is not in the registry.*known: .*support/);
      await rejects(c.getPrompt({ id: "moving", version: 9 }), /has no version 9/);
      await rejects(c.getPrompt({ id: "moving", label: "staging" }), /no label '?"?staging'?"? \(labels: production\)/);
    });
  }

  test("root: a version file edited by hand is refused by its content hash", async () => {
    const file = path.join(served.registry.root, ".promstack/prompts/question/1.yaml");
    const original = readFileSync(file, "utf8");
    writeFileSync(file, original.replace("질문", "질문!"));
    try {
      await rejects(new Client({ root: served.registry.root }).getPrompt({ id: "question", version: 1 }),
        /hashes to [0-9a-f]{8}, not to its version's 6702d151.*not used/);
    } finally {
      writeFileSync(file, original);
    }
  });
});

describe("promstack serve with a token", () => {
  const served = servedRegistry("s3cret-token_1");

  test("the right token reads prompts; none or a wrong one is refused in one line", async () => {
    const ok = new Client({ url: served.server.url, token: "s3cret-token_1" });
    assert.deepEqual((await ok.getPrompt({ id: "question", version: 1 })).render({ q: "?" }),
      [{ role: "user", content: "질문: ?" }]);
    const saved = process.env.PROMSTACK_SERVE_TOKEN;
    delete process.env.PROMSTACK_SERVE_TOKEN;
    try {
      await rejects(new Client({ url: served.server.url }).getPrompt({ id: "question" }), /wants a bearer token/);
      await rejects(new Client({ url: served.server.url, token: "wrong" }).getPrompt({ id: "question" }),
        /the one given was refused/);
      process.env.PROMSTACK_SERVE_TOKEN = "s3cret-token_1";
      assert.equal((await new Client({ url: served.server.url }).getPrompt({ id: "question" })).number, 1);
    } finally {
      if (saved === undefined) delete process.env.PROMSTACK_SERVE_TOKEN;
      else process.env.PROMSTACK_SERVE_TOKEN = saved;
    }
  });
});

describe("url mode against servers that are not promstack serve", () => {
  test("an unreachable server is one line asking whether promstack serve runs", async () => {
    const gone = await fakeServer(() => {});
    await gone.close();
    await rejects(new Client({ url: gone.url }).getPrompt({ id: "support" }),
      /cannot read the prompt registry there \(ECONNREFUSED\); is `promstack serve` running\?/);
  });

  test("a redirect is not followed (the token would go along)", async () => {
    const other = await fakeServer((req, res) => res.writeHead(200).end("{}"));
    const redirecting = await fakeServer((req, res) => res.writeHead(302, { Location: other.url + req.url }).end());
    try {
      await rejects(new Client({ url: redirecting.url, token: "t" }).getPrompt({ id: "support" }),
        /answered with a redirect \(HTTP 302 to http:\/\/127\.0\.0\.1:\d+\/v1\/prompts\/support\), which is not followed/);
      assert.equal(other.seen.length, 0);
    } finally {
      await other.close();
      await redirecting.close();
    }
  });

  test("an answer of another shape, and a version changed on the way, are refused", async () => {
    const version = { id: "support", number: 1, hash: "00000000", messages: [{ role: "user", content: "{{ x }}" }],
      model: null, params: {} };
    const odd = await fakeServer((req, res) => {
      if (req.url === "/v1/prompts/support") {
        return res.writeHead(200, { ETag: '"e1"' }).end(JSON.stringify({ labels: { production: 1 },
          versions: [{ number: 1, hash: "00000000" }] }));
      }
      if (req.url === "/v1/prompts/support/versions/1") return res.writeHead(200).end(JSON.stringify(version));
      res.writeHead(200).end(JSON.stringify({ hello: "world" }));
    });
    try {
      await rejects(new Client({ url: odd.url }).getPrompt({ id: "other" }), /not an answer of promstack's registry API/);
      await rejects(new Client({ url: odd.url }).getPrompt({ id: "support" }),
        /the text hashes to [0-9a-f]{8}, not to its version's 00000000/);
    } finally {
      await odd.close();
    }
  });

  test("an entry is revalidated with If-None-Match after the label TTL; a 304 keeps what was read", async () => {
    const registry = makeRegistry();
    const served = await startServe(registry.root);
    let upstream = 0;
    const proxy = await fakeServer(async (req, res) => {
      upstream += 1;
      const answer = await fetch(served.url + req.url, { headers: req.headers["if-none-match"]
        ? { "If-None-Match": req.headers["if-none-match"] } : {} });
      const headers = Object.fromEntries([...answer.headers].filter(([k]) => k === "etag" || k === "content-type"));
      res.writeHead(answer.status, headers).end(Buffer.from(await answer.arrayBuffer()));
    });
    try {
      let now = 0;
      const c = new Client({ url: proxy.url, labelTtl: 1, clock: () => now });
      await c.getPrompt({ id: "moving" });
      const cold = upstream;
      assert.equal(proxy.seen.filter((r) => r.headers["if-none-match"]).length, 0);
      await c.getPrompt({ id: "moving" });
      assert.equal(upstream, cold, "within the TTL nothing is asked");
      now = 5;
      const again = await c.getPrompt({ id: "moving" });
      assert.equal(upstream, cold + 1, "after the TTL: the entry only, the version is kept");
      assert.ok(proxy.seen.at(-1).headers["if-none-match"]);
      assert.equal(again.number, 1);
    } finally {
      await proxy.close();
      await served.stop();
      registry.cleanup();
    }
  });
});

test("the client's options are checked", () => {
  assert.throws(() => new Client({ url: "ftp://x" }), /give the http\(s\) address of `promstack serve`/);
  assert.throws(() => new Client({ root: ".", url: "http://127.0.0.1:1" }), /root .* or url .*, not both/);
});

test("canonical JSON is Python's json.dumps(sort_keys, ensure_ascii=False, compact) and ids encode as safe_name", () => {
  const { canonicalJson, safeName } = sdk;
  assert.equal(canonicalJson({ b: [1, 2.5, 1e-7, 1e16, 1e21], a: "한\n\"😀", "\u{1F600}": 1, "\uFFFF": 2 }),
    '{"a":"한\\n\\"😀","b":[1,2.5,1e-07,10000000000000000,1000000000000000000000],"\uFFFF":2,"\u{1F600}":1}');
  assert.equal(safeName("x/y"), "x%2Fy");
  assert.equal(safeName(".."), "%2E.");
  assert.equal(safeName("요약"), "요약");
  assert.equal(safeName(""), "%");
  assert.equal(safeName("a b%"), "a%20b%25");
});
