/**
 * Jinja2 templates rendered with nunjucks, the subset that gives the same text as Python's
 * StrictUndefined sandbox; anything else is a TemplateError, never a different text.
 *
 * nunjucks parses the template; before compiling, the tree is checked against the subset and
 * rewritten where JavaScript and Python differ:
 * - a missing variable or key is an error wherever it is read (also in {% if %}), except as
 *   the first argument of `default` or the subject of `is defined` / `is undefined`;
 * - conditions, `and`, `or` and `not` use Python's truth ([] and {} are false);
 * - comparisons use Python's equality and ordering (1 == "1" is false);
 * - printed values are Python's str(): True, False, None, 2.5, 1e-07; a list or an object
 *   printed as a whole (Python shows its repr) is refused;
 * - loops run over lists, strings (by character) and objects (by key);
 * - filters: only those below, written to Python's behaviour; arithmetic, float literals,
 *   macros, includes, calls other than range() are refused.
 */
import * as nunjucks from "nunjucks";
import { codePointCompare, pyFloatRepr } from "./canonical";
import { TemplateError } from "./errors";

// nunjucks' parser, transformer and compiler: public modules without types of their own
// eslint-disable-next-line @typescript-eslint/no-require-imports
const parser = require("nunjucks/src/parser");
// eslint-disable-next-line @typescript-eslint/no-require-imports
const lexer = require("nunjucks/src/lexer");
// eslint-disable-next-line @typescript-eslint/no-require-imports
const nodes = require("nunjucks/src/nodes");
// eslint-disable-next-line @typescript-eslint/no-require-imports
const compilerModule = require("nunjucks/src/compiler");
// eslint-disable-next-line @typescript-eslint/no-require-imports
const transformer = require("nunjucks/src/transformer");

/** Raised inside a render: remembered, since nunjucks wraps what its template code throws. */
let failure: RenderError | undefined;

class RenderError extends TemplateError {
  constructor(message: string) {
    super(message);
    failure = this;
  }
}

const SOFT = "\u0000soft:"; // a variable read where Jinja2 lets it be undefined
const MAX_SIZE = 4 * 1024 * 1024; // characters of one rendered text (as Python's sandbox)
const MAX_RANGE = 100_000; // items of range() (Jinja2's sandbox)
const CPU_MS = 1000; // of one render

const ALLOWED = new Set([
  "Root", "NodeList", "Output", "TemplateData", "Symbol", "LookupVal", "Literal", "Filter", "If", "InlineIf",
  "For", "Set", "Compare", "CompareOperand", "And", "Or", "Not", "Is", "In", "Concat", "Group", "Array", "Dict",
  "Pair", "KeywordArgs", "FunCall",
]);
const TESTS = new Set(["defined", "undefined", "none", "odd", "even", "divisibleby", "string"]);
const REFUSED: Record<string, string> = {
  Add: "arithmetic (+)", Sub: "arithmetic (-)", Mul: "arithmetic (*)", Div: "division (/)",
  FloorDiv: "division (//)", Mod: "the % operator", Pow: "the ** operator", Neg: "a negative sign",
  Pos: "a unary +", Macro: "macros", Caller: "call blocks", Include: "include", Extends: "extends",
  Import: "import", FromImport: "import", Block: "blocks", Super: "super()", Capture: "{% set %} blocks",
  Switch: "switch", CallExtension: "extensions", FilterAsync: "async filters",
};

/** The Python-compatible filters; nunjucks' own are not offered. */
const FILTERS: Record<string, (...args: any[]) => unknown> = {
  upper: (s: unknown) => pyStr(s).toUpperCase(),
  lower: (s: unknown) => pyStr(s).toLowerCase(),
  capitalize: (s: unknown) => {
    const chars = [...pyStr(s)];
    return chars.length ? chars[0].toUpperCase() + chars.slice(1).join("").toLowerCase() : "";
  },
  title: (s: unknown) =>
    pyStr(s).split(/([-\s({[<]+)/u).filter(Boolean)
      .map((w) => { const c = [...w]; return c[0].toUpperCase() + c.slice(1).join("").toLowerCase(); }).join(""),
  trim: (s: unknown, chars?: unknown) => {
    if (chars !== undefined) throw new RenderError("trim(chars) is not supported; use trim without arguments");
    return pyStr(s).replace(/^[\s\x1c-\x1f\x85]+|[\s\x1c-\x1f\x85]+$/gu, "");
  },
  length: (v: unknown) => sizeOf(v),
  count: (v: unknown) => sizeOf(v),
  join: (v: unknown, sep: unknown = "", attribute?: unknown) => {
    if (attribute !== undefined) throw new RenderError("join(attribute=...) is not supported");
    return sized([...iterate(v)].map(pyStr).join(pyStr(sep)));
  },
  default: (v: unknown, fallback: unknown = "", boolean: unknown = false) =>
    v === undefined || (truthy(boolean) && !truthy(v)) ? fallback : v,
  first: (v: unknown) => [...iterate(v)][0],
  last: (v: unknown) => { const all = [...iterate(v)]; return all[all.length - 1]; },
  replace: (s: unknown, old: unknown, repl: unknown, count?: unknown) => {
    if (count !== undefined) throw new RenderError("replace(old, new, count) is not supported; drop count");
    const text = pyStr(s);
    const o = pyStr(old);
    const r = pyStr(repl);
    return sized(o === "" ? [...text].map((c) => r + c).join("") + r : text.split(o).join(r));
  },
  string: (v: unknown) => pyStr(v),
};
FILTERS.d = FILTERS.default;

function sized(text: string): string {
  if (text.length > MAX_SIZE) {
    throw new RenderError(`template stopped: a value of more than ${MAX_SIZE.toLocaleString("en")} characters`);
  }
  return text;
}

function sizeOf(v: unknown): number {
  if (typeof v === "string") return [...v].length;
  if (Array.isArray(v)) return v.length;
  if (v !== null && typeof v === "object") return Object.keys(v).length;
  throw new RenderError(`length of ${describe(v)}: it has none`);
}

function* iterate(v: unknown): Iterable<unknown> {
  if (typeof v === "string") yield* v;
  else if (Array.isArray(v)) yield* v;
  else if (v !== null && typeof v === "object") yield* Object.keys(v);
  else throw new RenderError(`${describe(v)} is not iterable`);
}

function describe(v: unknown): string {
  if (v === null) return "None";
  if (v === undefined) return "an undefined value";
  return typeof v === "object" ? (Array.isArray(v) ? "a list" : "an object") : `a ${typeof v}`;
}

/** Python's bool(). */
export function truthy(v: unknown): boolean {
  if (Array.isArray(v)) return v.length > 0;
  if (v !== null && typeof v === "object") return Object.keys(v).length > 0;
  return Boolean(v);
}

/** Python's str() of a value a template prints. */
export function pyStr(v: unknown): string {
  if (typeof v === "string") return v;
  if (v === true) return "True";
  if (v === false) return "False";
  if (v === null) return "None";
  if (typeof v === "number") {
    if (!Number.isInteger(v)) return pyFloatRepr(v);
    return Math.abs(v) >= 1e21 ? BigInt(v).toString() : String(v === 0 ? 0 : v);
  }
  if (typeof v === "bigint") return v.toString();
  throw new RenderError(`printing ${describe(v)} as a whole is not supported (Python prints its repr); ` +
    "print its items, or use join");
}

function pyEquals(a: unknown, b: unknown): boolean {
  if (typeof a === "boolean" || typeof b === "boolean") {
    if ((typeof a === "boolean" || typeof a === "number") && (typeof b === "boolean" || typeof b === "number")) {
      return Number(a) === Number(b);
    }
    return false;
  }
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => pyEquals(x, b[i]));
  }
  if (a !== null && b !== null && typeof a === "object" && typeof b === "object") {
    const ka = Object.keys(a);
    return ka.length === Object.keys(b).length &&
      ka.every((k) => k in b && pyEquals((a as any)[k], (b as any)[k]));
  }
  return a === b;
}

function pyOrder(a: unknown, b: unknown, op: string): number {
  const num = (x: unknown) => typeof x === "number" || typeof x === "boolean";
  if (num(a) && num(b)) return Number(a) - Number(b);
  if (typeof a === "string" && typeof b === "string") return codePointCompare(a, b);
  throw new RenderError(`'${op}' between ${describe(a)} and ${describe(b)} is not supported`);
}

function compare(first: unknown, ...rest: unknown[]): boolean {
  let left = first;
  for (let i = 0; i < rest.length; i += 2) {
    const op = rest[i] as string;
    const right = rest[i + 1];
    let ok: boolean;
    if (op === "==" || op === "===") ok = pyEquals(left, right);
    else if (op === "!=" || op === "!==") ok = !pyEquals(left, right);
    else {
      const d = pyOrder(left, right, op);
      ok = op === "<" ? d < 0 : op === ">" ? d > 0 : op === "<=" ? d <= 0 : d >= 0;
    }
    if (!ok) return false;
    left = right;
  }
  return true;
}

function range(...args: unknown[]): number[] {
  if (!args.every((a) => Number.isInteger(a))) throw new RenderError("range() takes whole numbers");
  const [start, stop, step] = args.length === 1 ? [0, args[0] as number, 1] :
    [args[0] as number, args[1] as number, (args[2] ?? 1) as number];
  if (step === 0) throw new RenderError("range() step must not be zero");
  const n = Math.max(0, Math.ceil((stop - start) / step));
  if (n > MAX_RANGE) throw new RenderError(`range() would make ${n} items, more than the limit of ${MAX_RANGE}`);
  return Array.from({ length: n }, (_, i) => start + i * step);
}

class Undefined extends RenderError {
  constructor(readonly variable: string) {
    super(variable);
  }
}

/** The compiled code's hooks: lookups, member access, printing, truth, comparison, loops. */
class StrictEnvironment extends nunjucks.Environment {
  deadline = 0;

  pyLookup(context: any, frame: any, name: string): unknown {
    const soft = name.startsWith(SOFT);
    const key = soft ? name.slice(SOFT.length) : name;
    const local = frame.lookup(key);
    if (local !== undefined) return local;
    const vars = context.ctx as Record<string, unknown>;
    if (Object.prototype.hasOwnProperty.call(vars, key)) return vars[key];
    if (Object.prototype.hasOwnProperty.call(GLOBALS, key)) return GLOBALS[key];
    if (soft) return undefined;
    throw new Undefined(key);
  }

  pyMember(obj: unknown, key: unknown, soft = false): unknown {
    if (obj === undefined || obj === null) {
      throw new RenderError(`${describe(obj)} has no attribute or item ${JSON.stringify(key)}`);
    }
    if (Array.isArray(obj) || typeof obj === "string") {
      const items = typeof obj === "string" ? [...obj] : obj;
      if (typeof key === "number" && Number.isInteger(key)) {
        const i = key < 0 ? items.length + key : key;
        if (i >= 0 && i < items.length) return items[i];
        if (soft) return undefined;
        throw new RenderError(`${describe(obj)} has no element ${key}`);
      }
      if (key === "length" && !soft) throw new RenderError("use | length, not .length");
    } else if (typeof obj === "object" && Object.prototype.hasOwnProperty.call(obj, key as PropertyKey)) {
      return (obj as any)[key as PropertyKey];
    }
    if (soft) return undefined;
    throw new Undefined(`${typeof key === "string" ? key : String(key)}`);
  }

  pyOutput(v: unknown): string {
    if (Date.now() > this.deadline) throw new RenderError(`template stopped: more than ${CPU_MS} ms of rendering`);
    if (v === undefined) throw new RenderError("an undefined value cannot be printed");
    return sized(pyStr(v));
  }
}

const GLOBALS: Record<string, unknown> = { range, True: true, False: false, None: null };

const HOOKS: Record<string, (this: StrictEnvironment, ...args: any[]) => unknown> = {
  __truthy: (v: unknown) => truthy(v),
  __compare: compare,
  __iter(this: StrictEnvironment, v: unknown) {
    if (Date.now() > this.deadline) throw new RenderError(`template stopped: more than ${CPU_MS} ms of rendering`);
    return [...iterate(v)];
  },
  __softmember(this: StrictEnvironment, obj: unknown, key: unknown) {
    return this.pyMember(obj, key, true);
  },
};

function makeEnvironment(): StrictEnvironment {
  const env = new StrictEnvironment([], { autoescape: false, throwOnUndefined: true });
  (env as any).filters = {};
  (env as any).tests = Object.fromEntries(Object.entries((env as any).tests).filter(([k]) => TESTS.has(k)));
  (env as any).addTest("none", (v: unknown) => v === null);
  for (const [name, f] of Object.entries(FILTERS)) env.addFilter(name, f);
  for (const [name, f] of Object.entries(HOOKS)) env.addFilter(name, f.bind(env) as any);
  return env;
}

const ENV = makeEnvironment();

function filterNode(node: any, name: string, args: any[]): any {
  return new nodes.Filter(node.lineno, node.colno, new nodes.Symbol(node.lineno, node.colno, name),
    new nodes.NodeList(node.lineno, node.colno, args));
}

function truth(node: any): any {
  return filterNode(node, "__truthy", [node]);
}

/** Soft where Jinja2's StrictUndefined allows an undefined value: `x | default`, `x is defined`. */
function soften(node: any): any {
  if (node.typename === "Symbol") {
    return new nodes.Symbol(node.lineno, node.colno, SOFT + node.value);
  }
  if (node.typename === "LookupVal") return filterNode(node, "__softmember", [rewrite(node.target), rewrite(node.val)]);
  return rewrite(node);
}

function rewrite(node: any): any {
  if (node === null || node === undefined || typeof node !== "object") return node;
  const type: string = node.typename;
  if (type === "Neg" && node.target?.typename === "Literal" && Number.isInteger(node.target.value)) {
    return new nodes.Literal(node.lineno, node.colno, -node.target.value); // xs[-1]
  }
  if (!ALLOWED.has(type)) {
    throw new RenderError(`${REFUSED[type] ?? type} is not rendered by the TypeScript SDK (only the Jinja2 ` +
      "subset it renders as Python does); render it with promstack serve's render endpoint or change the template");
  }
  switch (type) {
    case "Filter": {
      const name = node.name.value;
      if (!(name in FILTERS) && !(name in HOOKS)) {
        throw new RenderError(`filter '${name}' is not rendered by the TypeScript SDK; it renders ` +
          `${Object.keys(FILTERS).sort().join(", ")}`);
      }
      const [first, ...rest] = node.args.children;
      const args = name === "default" || name === "d" ? [soften(first), ...rest.map(rewrite)] :
        node.args.children.map(rewrite);
      return filterNode(node, name, args);
    }
    case "Is": {
      if (node.right.typename === "Literal" && node.right.value === null) { // `is none`: the literal none
        node.right = new nodes.Symbol(node.right.lineno, node.right.colno, "none");
      }
      const test = node.right.typename === "Symbol" ? node.right.value : node.right.name?.value;
      if (!TESTS.has(test)) {
        throw new RenderError(`the test 'is ${test}' is not rendered by the TypeScript SDK; it renders ` +
          `${[...TESTS].join(", ")}`);
      }
      node.left = test === "defined" || test === "undefined" ? soften(node.left) : rewrite(node.left);
      if (node.right.typename === "FunCall") node.right.args = rewrite(node.right.args);
      return node;
    }
    case "FunCall":
      if (node.name.typename !== "Symbol" || node.name.value !== "range") {
        throw new RenderError("calls other than range() are not rendered by the TypeScript SDK (Python's " +
          "methods, such as .upper(), are not JavaScript's); use a filter");
      }
      node.args = rewrite(node.args);
      return node;
    case "If":
    case "InlineIf":
      node.cond = truth(rewrite(node.cond));
      node.body = rewrite(node.body);
      node.else_ = rewrite(node.else_);
      return node;
    case "Not":
      node.target = truth(rewrite(node.target));
      return node;
    case "And":
    case "Or": {
      const left = rewrite(node.left);
      const right = rewrite(node.right);
      // Python returns an operand: `a and b` is b when a is true, else a
      return new nodes.InlineIf(node.lineno, node.colno, truth(left), type === "And" ? right : left,
        type === "And" ? left : right);
    }
    case "Compare": {
      const args = [rewrite(node.expr)];
      for (const op of node.ops) args.push(new nodes.Literal(op.lineno, op.colno, op.type), rewrite(op.expr));
      return filterNode(node, "__compare", args);
    }
    case "For":
      node.arr = filterNode(node.arr, "__iter", [rewrite(node.arr)]);
      node.body = rewrite(node.body);
      node.else_ = rewrite(node.else_);
      return node;
  }
  for (const field of node.fields as string[]) {
    const value = node[field];
    node[field] = Array.isArray(value) ? value.map(rewrite) : rewrite(value);
  }
  return node;
}

export interface Compiled {
  render(variables: Record<string, unknown>): string;
}

/** Compile a Jinja2 template of the subset; `source` names it in errors. */
export function compileTemplate(text: string, source: string): Compiled {
  let template: nunjucks.Template;
  failure = undefined;
  try {
    const tokens = lexer.lex(text, {});
    for (let tok = tokens.nextToken(); tok; tok = tokens.nextToken()) {
      if (tok.type === "float") {
        throw new RenderError(`the number ${tok.value}: float literals are not rendered by the TypeScript SDK ` +
          "(Python prints 1.0 where JavaScript prints 1); pass the value as a variable");
      }
    }
    const ast = transformer.transform(rewrite(parser.parse(text, [], {})), [], source);
    const compiler = new compilerModule.Compiler(source, false);
    compiler.compile(ast);
    const code = (compiler.getCode() as string)
      .replaceAll("runtime.contextOrFrameLookup(", "env.pyLookup(")
      .replaceAll("runtime.memberLookup(", "env.pyMember(")
      .replaceAll("runtime.suppressValue(", "env.pyOutput(");
    const props = new Function(code)();
    template = new nunjucks.Template({ type: "code", obj: props } as any, ENV, source, true);
  } catch (err) {
    throw asTemplateError(err, source);
  }
  return {
    render(variables: Record<string, unknown>): string {
      ENV.deadline = Date.now() + CPU_MS;
      failure = undefined;
      try {
        return template.render({ ...variables });
      } catch (err) {
        throw asTemplateError(err, source);
      }
    },
  };
}

function asTemplateError(err: unknown, source: string): TemplateError {
  const found = err instanceof TemplateError ? err : failure;
  failure = undefined;
  if (found instanceof Undefined) {
    return new RenderError(`template variable '${found.variable}' is undefined in ${source}; give it a value ` +
      `(render({ ${JSON.stringify(found.variable)}: ... }))`);
  }
  if (found) return new RenderError(`${source}: ${found.message}`);
  const message = (err instanceof Error ? err.message : String(err)).replace(/\s+/g, " ").trim();
  return new RenderError(`${source}: template error: ${message}`);
}
