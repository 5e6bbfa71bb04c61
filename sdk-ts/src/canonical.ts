/**
 * The content hash of a prompt version exactly as Python computes it: sha256 of
 * json.dumps({"messages", "model", "params"}, sort_keys=True, ensure_ascii=False,
 * separators=(",", ":")), its first 8 hex digits.
 *
 * Python tells 1 (int) from 1.0 (float) and prints them differently; JavaScript has one
 * number. Values read for hashing therefore keep floats as PyFloat (from YAML by the
 * scalar's text, from JSON by its token), and a float prints as Python's repr.
 */
import { createHash } from "node:crypto";
import { PromstackError } from "./errors";

export class PyFloat {
  constructor(readonly value: number) {}
}

/** Python's repr of a float: shortest round-trip digits, fixed from 1e-4 to below 1e16. */
export function pyFloatRepr(x: number): string {
  if (Number.isNaN(x)) return "NaN";
  if (!Number.isFinite(x)) return x > 0 ? "Infinity" : "-Infinity";
  if (x === 0) return Object.is(x, -0) ? "-0.0" : "0.0";
  const sign = x < 0 ? "-" : "";
  const [mantissa, e] = Math.abs(x).toExponential().split("e");
  const digits = mantissa.replace(".", "");
  const exp = parseInt(e, 10);
  if (exp >= -4 && exp < 16) {
    if (exp < 0) return `${sign}0.${"0".repeat(-exp - 1)}${digits}`;
    const whole = digits.length > exp + 1 ? digits.slice(0, exp + 1) : digits.padEnd(exp + 1, "0");
    const frac = digits.length > exp + 1 ? digits.slice(exp + 1) : "0";
    return `${sign}${whole}.${frac}`;
  }
  const rest = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
  const ee = Math.abs(exp) < 10 ? `0${Math.abs(exp)}` : String(Math.abs(exp));
  return `${sign}${rest}e${exp < 0 ? "-" : "+"}${ee}`;
}

function pyInt(x: number): string {
  return Math.abs(x) >= 1e21 ? BigInt(x).toString() : String(x === 0 ? 0 : x);
}

/** Compare two strings by code point, as Python sorts them (JavaScript compares UTF-16 units). */
export function codePointCompare(a: string, b: string): number {
  const ai = a[Symbol.iterator]();
  const bi = b[Symbol.iterator]();
  for (;;) {
    const x = ai.next();
    const y = bi.next();
    if (x.done || y.done) return x.done && y.done ? 0 : x.done ? -1 : 1;
    const d = (x.value.codePointAt(0) as number) - (y.value.codePointAt(0) as number);
    if (d !== 0) return d;
  }
}

/** json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":")). */
export function canonicalJson(value: unknown): string {
  if (value === null || value === undefined) return "null";
  if (value instanceof PyFloat) return pyFloatRepr(value.value);
  switch (typeof value) {
    case "boolean":
      return value ? "true" : "false";
    case "number":
      return Number.isInteger(value) ? pyInt(value) : pyFloatRepr(value);
    case "bigint":
      return value.toString();
    case "string":
      return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (typeof value === "object") {
    const keys = Object.keys(value as object).sort(codePointCompare);
    const obj = value as Record<string, unknown>;
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(",")}}`;
  }
  throw new PromstackError(`a prompt holds a ${typeof value}, which has no JSON form`);
}

export function contentHash(messages: unknown, model: unknown, params: unknown): string {
  const raw = canonicalJson({ messages, model: model ?? null, params });
  return createHash("sha256").update(raw, "utf8").digest("hex").slice(0, 8);
}

/** The value with PyFloat unwrapped: what an application sees. */
export function plain(value: unknown): unknown {
  if (value instanceof PyFloat) return value.value;
  if (Array.isArray(value)) return value.map(plain);
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
  }
  return value;
}

/** JSON.parse that keeps floats (a number token with . or e, and Python's NaN/Infinity) as PyFloat. */
export function parseJson(text: string): unknown {
  let i = 0;
  const fail = (what: string): never => {
    throw new SyntaxError(`${what} at position ${i}`);
  };
  const ws = () => {
    while (i < text.length && " \t\n\r".includes(text[i])) i++;
  };
  const value = (depth: number): unknown => {
    if (depth > 200) fail("nested too deep");
    ws();
    const c = text[i];
    if (c === "{") {
      i++;
      const out: Record<string, unknown> = {};
      ws();
      if (text[i] === "}") return i++, out;
      for (;;) {
        ws();
        if (text[i] !== '"') fail("expected a key");
        const key = str();
        ws();
        if (text[i++] !== ":") fail("expected :");
        out[key] = value(depth + 1);
        ws();
        if (text[i] === ",") i++;
        else if (text[i] === "}") return i++, out;
        else fail("expected , or }");
      }
    }
    if (c === "[") {
      i++;
      const out: unknown[] = [];
      ws();
      if (text[i] === "]") return i++, out;
      for (;;) {
        out.push(value(depth + 1));
        ws();
        if (text[i] === ",") i++;
        else if (text[i] === "]") return i++, out;
        else fail("expected , or ]");
      }
    }
    if (c === '"') return str();
    for (const [word, v] of [["true", true], ["false", false], ["null", null], ["NaN", new PyFloat(NaN)],
      ["Infinity", new PyFloat(Infinity)], ["-Infinity", new PyFloat(-Infinity)]] as const) {
      if (text.startsWith(word, i)) return (i += word.length), v;
    }
    const m = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?/.exec(text.slice(i, i + 400));
    if (!m) fail("unexpected character");
    i += m![0].length;
    const n = Number(m![0]);
    return m![2] || m![3] ? new PyFloat(n) : Number.isSafeInteger(n) ? n : BigInt(m![0]);
  };
  const str = (): string => {
    const start = i;
    i++;
    while (i < text.length && text[i] !== '"') i += text[i] === "\\" ? 2 : 1;
    if (i >= text.length) fail("unterminated string");
    i++;
    return JSON.parse(text.slice(start, i)) as string;
  };
  const result = value(0);
  ws();
  if (i !== text.length) fail("unexpected text after the value");
  return result;
}
