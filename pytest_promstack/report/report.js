"use strict";
(function () {
  const DATA = JSON.parse(document.getElementById("promstack-data").textContent);
  const CASES = DATA.cases, TEXTS = DATA.texts, PAGE = 100;
  const norm = (s) => String(s == null ? "" : s).normalize("NFC").toLowerCase();
  const chat = (c) => (c.turns || []).map((t) => TEXTS[t[2]] + "\n" + (t[3] ?? "")).join("\n");
  const haystack = CASES.map((c) => norm([c.id, c.suite, c.model, c.prompt, c.where, c.vars, c.output, c.error, chat(c)].join("\n")));
  const FILTERS = [
    ["all", () => true],
    ["failed", (c) => c.outcome === "failed"],
    ["errored", (c) => c.outcome === "error" || c.error != null],
    ["flaky", (c) => c.flaky],
    ["truncated", (c) => c.trunc],
  ];
  if (DATA.baseline) {
    FILTERS.push(["regressed", (c) => c.status === "regressed"], ["fixed", (c) => c.status === "fixed"],
                 ["new", (c) => c.status === "new"]);
  }
  const state = { filter: "all", query: "", page: 0, open: new Set() };

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") node.className = v; else node.setAttribute(k, v);
    }
    for (const child of children) {
      if (child == null) continue;
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    }
    return node;
  }
  const num = (v, digits) => (v == null ? "n/a" : Number(v).toFixed(digits));

  function matches() {
    const test = FILTERS.find((f) => f[0] === state.filter)[1];
    const q = norm(state.query).trim();
    const out = [];
    for (let i = 0; i < CASES.length; i++) {
      if (test(CASES[i]) && (!q || haystack[i].includes(q))) out.push(i);
    }
    return out;
  }

  function assertList(asserts) {
    const ul = el("ul", { class: "asserts" });
    for (const [type, passed, score, reason] of asserts) {
      ul.appendChild(el("li", null, el("span", { class: passed ? "pass" : "fail" }, passed ? "✓ " : "✗ "),
        `${type} (score ${num(score, 2)}): ${reason ?? ""}`));
    }
    return ul;
  }

  function stepList(steps) {
    // an agent's tool calls, numbered in order: the tool, its arguments, what it returned
    const ol = el("ol", { class: "steps" });
    for (const [, step, name, args, result] of steps) {
      ol.appendChild(el("li", { class: "step" },
        el("div", null, el("span", { class: "tool" }, name), el("span", { class: "meta" }, ` · model call ${step ?? "?"}`)),
        el("pre", { class: "args" }, TEXTS[args]),
        el("pre", { class: "result" }, result < 0 ? "(no tool ran)" : "→ " + TEXTS[result])));
    }
    return ol;
  }

  function unshown(n, what) {
    return el("p", { class: "meta gap" }, `… ${n} ${what} not shown here (the results JSON has them all)`);
  }

  function transcript(c) {
    // a conversation: each turn's user message and reply, the tool calls between, its assertions
    const box = el("div", { class: "chat" });
    const steps = c.steps || [], byTurn = new Map(), turns = new Set(c.turns.map((t) => t[0]));
    for (const s of steps) if (turns.has(s[0])) byTurn.set(s[0], [...(byTurn.get(s[0]) || []), s]);
    let last = 0;
    for (const [index, where, input, output, passed, , asserts, ms, tin, tout, cost, cached] of c.turns) {
      if (index > last + 1) box.appendChild(unshown(index - last - 1, "turns"));
      last = index;
      const failed = passed === false;
      const facts = [where, ms == null ? null : num(ms, 0) + " ms", tin == null ? null : `tokens ${tin}/${tout ?? "n/a"}`,
        cost == null ? null : "$" + num(cost, 6), cached ? "cached" : null].filter((x) => x != null);
      box.appendChild(el("div", { class: "turn" + (failed ? " failed" : ""), "data-turn": String(index) },
        el("div", { class: "who" }, el("span", { class: "name" }, `turn ${index}`),
          failed ? el("span", { class: "pill o-failed" }, "failed") : null,
          el("span", { class: "meta" }, facts.length ? " " + facts.join(" · ") : "")),
        el("div", { class: "bubble user" }, el("div", { class: "role" }, "user"), el("div", { class: "text" }, TEXTS[input])),
        byTurn.has(index) ? stepList(byTurn.get(index)) : null,
        el("div", { class: "bubble assistant" }, el("div", { class: "role" }, "assistant"),
          el("div", { class: "text" }, output == null ? "(no reply)" : output)),
        asserts.length ? assertList(asserts) : null));
    }
    if ((c.tcount ?? last) > last) box.appendChild(unshown(c.tcount - last, "turns"));
    const loose = steps.filter((s) => !turns.has(s[0]));
    if (loose.length) box.appendChild(el("div", null, el("h4", null, "tool calls outside the turns shown"), stepList(loose)));
    return box;
  }

  function detail(c) {
    const box = el("div", { class: "detail" });
    const agent = c.turns || c.steps ? ` · ${c.calls ?? "n/a"} model calls · ${c.scount ?? 0} tool calls` : "";
    const fturn = c.fturn != null ? ` · failed at turn ${c.fturn}` : "";
    box.appendChild(el("div", { class: "kv" }, `${c.where} · ${c.prompt} · tokens ${c.tin ?? "n/a"} in / ${c.tout ?? "n/a"} out · cost ${c.cost == null ? "n/a" : "$" + num(c.cost, 6)} (eval $${num(c.ecost, 6)}) · latency ${num(c.ms, 0)} ms${c.cached ? " · cached" : ""}${agent}${fturn}${c.status ? " · baseline: " + c.status + (c.before ? " (was " + c.before + ")" : "") : ""}`));
    box.appendChild(el("h4", null, "variables"));
    box.appendChild(el("pre", null, c.vars));
    const msgs = c.msgs.map(([role, t]) => el("pre", null, `[${role}] ${TEXTS[t]}`));
    if (c.turns) {
      box.appendChild(el("h4", null, `conversation (${c.tcount} turns)`));
      box.appendChild(transcript(c));
      box.appendChild(el("details", { class: "sent" }, el("summary", null, `messages sent last (${msgs.length})`), ...msgs));
    } else {
      box.appendChild(el("h4", null, "rendered prompt"));
      for (const m of msgs) box.appendChild(m);
      box.appendChild(el("h4", null, "output"));
      box.appendChild(el("pre", { class: "output" }, c.output == null ? "(no output)" : c.output));
      if (c.steps) {
        box.appendChild(el("h4", null, `tool calls (${c.scount})`));
        box.appendChild(stepList(c.steps));
        if (c.scount > c.steps.length) box.appendChild(unshown(c.scount - c.steps.length, "tool calls"));
      }
    }
    if (c.error) { box.appendChild(el("h4", null, "error")); box.appendChild(el("pre", { class: "fail" }, c.error)); }
    if (c.asserts.length) {
      box.appendChild(el("h4", null, c.turns ? "assertions on the whole conversation" : "assertions"));
      box.appendChild(assertList(c.asserts));
    }
    if (c.judges.length) {
      box.appendChild(el("h4", null, "judges"));
      const ul = el("ul");
      for (const [name, mean, normalised, reason] of c.judges) {
        ul.appendChild(el("li", null, `${name}: ${num(mean, 2)} (${num(normalised, 1)}/100) ${reason}`));
      }
      box.appendChild(ul);
    }
    return box;
  }

  function render() {
    const hits = matches();
    const pages = Math.max(1, Math.ceil(hits.length / PAGE));
    state.page = Math.min(state.page, pages - 1);
    const body = document.getElementById("case-rows");
    const rows = document.createDocumentFragment();
    for (const i of hits.slice(state.page * PAGE, (state.page + 1) * PAGE)) {
      const c = CASES[i];
      const open = state.open.has(i);
      const tr = el("tr", { class: "case", "data-index": String(i) },
        el("td", null, open ? "▾" : "▸"), el("td", { class: "id" }, c.id),
        el("td", null, c.suite), el("td", null, c.model), el("td", null, c.prompt),
        el("td", null, el("span", { class: "pill o-" + c.outcome }, c.outcome),
          c.status && c.status !== "still passing" && c.status !== "not compared" ? el("span", { class: "pill s-" + c.status.replace(/ /g, "-") }, c.status) : null,
          c.fturn != null ? el("span", { class: "pill o-failed", title: "the first turn of the conversation that failed" }, `turn ${c.fturn}`) : null,
          c.flaky ? el("span", { class: "pill" }, "flaky") : null,
          c.trunc ? el("span", { class: "pill", title: "the answer stopped at max_tokens (finish_reason length)" }, "truncated") : null),
        el("td", null, num(c.quality, 1)), el("td", null, num(c.ms, 0)),
        el("td", null, c.tin == null ? "n/a" : `${c.tin}/${c.tout}`),
        el("td", null, c.cost == null ? "n/a" : num(c.cost, 6)));
      rows.appendChild(tr);
      if (open) rows.appendChild(el("tr", { class: "detail" }, el("td", { colspan: "10" }, detail(c))));
    }
    body.replaceChildren(rows);
    const first = hits.length ? state.page * PAGE + 1 : 0;
    document.getElementById("shown").textContent =
      `showing ${first}–${Math.min(hits.length, (state.page + 1) * PAGE)} of ${hits.length} matching cases (${CASES.length} in the run)`;
    document.getElementById("page").textContent = `page ${state.page + 1} of ${pages}`;
    document.getElementById("prev").disabled = state.page === 0;
    document.getElementById("next").disabled = state.page >= pages - 1;
    for (const b of document.querySelectorAll("#filters button")) b.classList.toggle("on", b.dataset.filter === state.filter);
  }

  const bar = document.getElementById("filters");
  for (const [name, test] of FILTERS) {
    const n = CASES.filter(test).length;
    const b = el("button", { type: "button", "data-filter": name }, `${name} (${n})`);
    b.addEventListener("click", () => { state.filter = name; state.page = 0; render(); });
    bar.appendChild(b);
  }
  let timer = null;
  document.getElementById("search").addEventListener("input", (e) => {
    clearTimeout(timer);
    timer = setTimeout(() => { state.query = e.target.value; state.page = 0; render(); }, 120);
  });
  document.getElementById("prev").addEventListener("click", () => { state.page--; render(); });
  document.getElementById("next").addEventListener("click", () => { state.page++; render(); });
  document.getElementById("case-rows").addEventListener("click", (e) => {
    const tr = e.target.closest("tr.case");
    if (!tr) return;
    const i = Number(tr.dataset.index);
    if (state.open.has(i)) state.open.delete(i); else state.open.add(i);
    render();
  });

  // ---- the matrix: rows are cases, columns prompt version x model ----------------------------
  const M = DATA.matrix;
  const MPAGE = 50, MAX_DIFF = 2000000;  // cells of the diff's table (words x words, else lines x lines)
  const ran = (row) => row.cells.filter((i) => i >= 0).map((i) => CASES[i]);
  const MFILTERS = [
    ["all", () => true],
    ["failures", (row) => ran(row).some((c) => c.outcome !== "passed")],
    ["differences", (row) => {
      const cs = ran(row);
      return cs.some((c) => c.outcome !== cs[0].outcome || c.output !== cs[0].output);
    }],
  ];
  const mstate = { filter: "all", page: 0, picked: [] };

  function tokens(text, words) {
    return words ? String(text ?? "").split(/(\s+)/).filter((t) => t !== "") : String(text ?? "").split(/(?<=\n)/);
  }

  function diffParts(a, b) {
    // longest common subsequence of words (of lines when the words would make too big a table)
    let words = true, x = tokens(a, true), y = tokens(b, true);
    if (x.length * y.length > MAX_DIFF) { words = false; x = tokens(a, false); y = tokens(b, false); }
    if (x.length * y.length > MAX_DIFF) return null;
    const n = x.length, m = y.length, L = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
    for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--) {
      L[i][j] = x[i] === y[j] ? L[i + 1][j + 1] + 1 : Math.max(L[i + 1][j], L[i][j + 1]);
    }
    const out = [];
    let i = 0, j = 0;
    while (i < n && j < m) {
      if (x[i] === y[j]) { out.push(["", x[i]]); i++; j++; }
      else if (L[i + 1][j] >= L[i][j + 1]) out.push(["del", x[i++]]);
      else out.push(["add", y[j++]]);
    }
    while (i < n) out.push(["del", x[i++]]);
    while (j < m) out.push(["add", y[j++]]);
    return out;
  }

  function renderDiff() {
    const box = document.getElementById("mdiff");
    if (mstate.picked.length < 2) { box.hidden = true; box.replaceChildren(); return; }
    const [a, b] = mstate.picked.map((i) => CASES[i]);
    const parts = diffParts(a.output, b.output);
    const pre = el("pre");
    if (parts === null) pre.appendChild(document.createTextNode("The outputs are too long to compare here."));
    else for (const [kind, t] of parts) pre.appendChild(kind ? el("span", { class: kind }, t) : document.createTextNode(t));
    box.replaceChildren(el("h4", null, `diff: ${a.prompt} · ${a.model} (−) → ${b.prompt} · ${b.model} (+), ${a.where}`), pre);
    box.hidden = false;
  }

  function cell(i) {
    if (i < 0) return el("td", { class: "missing" }, "not run");
    const c = CASES[i];
    const pick = el("input", { type: "checkbox", "data-case": String(i), "aria-label": "compare" });
    pick.checked = mstate.picked.includes(i);
    const scores = c.asserts.map(([type, passed, score]) => `${passed ? "✓" : "✗"} ${type}${score == null ? "" : " " + num(score, 2)}`);
    return el("td", { class: "cell " + c.outcome },
      el("div", null, pick, " ", el("span", { class: "pill o-" + c.outcome }, c.outcome),
        c.quality == null ? null : el("span", { class: "pill" }, "quality " + num(c.quality, 1))),
      el("div", { class: "out" }, c.output == null ? (c.error || "(no output)") : c.output),
      scores.length ? el("div", { class: "meta" }, scores.join(" · ")) : null,
      c.fturn != null || c.scount ? el("div", { class: "meta" }, [c.fturn != null ? `failed at turn ${c.fturn}` : null,
        c.scount ? `${c.scount} tool calls` : null].filter((x) => x).join(" · ")) : null);
  }

  function renderMatrix() {
    const test = MFILTERS.find((f) => f[0] === mstate.filter)[1];
    const hits = M.rows.filter(test);
    const pages = Math.max(1, Math.ceil(hits.length / MPAGE));
    mstate.page = Math.min(mstate.page, pages - 1);
    document.getElementById("matrix-head").replaceChildren(el("th", null, "case"),
      ...M.cols.map((c) => el("th", { class: "col" }, c)));
    const body = document.createDocumentFragment();
    for (const row of hits.slice(mstate.page * MPAGE, (mstate.page + 1) * MPAGE)) {
      body.appendChild(el("tr", null, el("td", { class: "id" }, el("div", null, row.name), el("div", { class: "meta" }, `${row.suite} · ${row.where}`), el("div", { class: "meta" }, ran(row)[0]?.vars ?? "")),
        ...row.cells.map(cell)));
    }
    document.getElementById("matrix-rows").replaceChildren(body);
    document.getElementById("mshown").textContent = `${hits.length} of ${M.rows.length} cases × ${M.cols.length} columns`;
    document.getElementById("mpage").textContent = `page ${mstate.page + 1} of ${pages}`;
    document.getElementById("mprev").disabled = mstate.page === 0;
    document.getElementById("mnext").disabled = mstate.page >= pages - 1;
    for (const b of document.querySelectorAll("#mfilters button")) b.classList.toggle("on", b.dataset.filter === mstate.filter);
    renderDiff();
  }

  const mbar = document.getElementById("mfilters");
  for (const [name, test] of MFILTERS) {
    const b = el("button", { type: "button", "data-filter": name }, `${name} (${M.rows.filter(test).length})`);
    b.addEventListener("click", () => { mstate.filter = name; mstate.page = 0; renderMatrix(); });
    mbar.appendChild(b);
  }
  document.getElementById("mprev").addEventListener("click", () => { mstate.page--; renderMatrix(); });
  document.getElementById("mnext").addEventListener("click", () => { mstate.page++; renderMatrix(); });
  document.getElementById("matrix-rows").addEventListener("change", (e) => {
    const i = Number(e.target.dataset.case);
    if (Number.isNaN(i)) return;
    mstate.picked = e.target.checked ? [...mstate.picked.filter((p) => p !== i), i].slice(-2) : mstate.picked.filter((p) => p !== i);
    renderMatrix();
  });
  renderMatrix();

  render();
})();
