/** One version of a prompt, loaded from a registry file or a served version, its hash checked. */
import * as YAML from "yaml";
import { contentHash, plain, PyFloat } from "./canonical";
import { PromstackError } from "./errors";
import { compileTemplate, type Compiled } from "./template";

export type Message = { role: string; content: unknown; [key: string]: unknown };

export const TEXT_SUFFIXES = [".txt", ".j2", ".jinja", ".md"];
const ROLES = new Set(["system", "user", "assistant", "tool", "developer"]);

export class PromptVersion {
  /** `labels`: the registry's labels on this version when it was read. */
  constructor(
    readonly id: string,
    readonly number: number,
    readonly hash: string,
    readonly labels: readonly string[],
    readonly messages: readonly Message[],
    readonly model: string | null,
    readonly params: Readonly<Record<string, unknown>>,
    private readonly source: string,
    private readonly templates: (Compiled | null)[] = [],
  ) {}

  /** The messages with every text content rendered (a missing variable is a TemplateError). */
  render(variables: Record<string, unknown> = {}): Message[] {
    return this.messages.map((m, i) => {
      if (typeof m.content !== "string") return { ...m };
      this.templates[i] ??= compileTemplate(m.content, this.source);
      return { ...m, content: (this.templates[i] as Compiled).render(variables) };
    });
  }

  withLabels(labels: readonly string[]): PromptVersion {
    return new PromptVersion(this.id, this.number, this.hash, labels, this.messages, this.model, this.params,
      this.source, this.templates);
  }
}

/** The parts of a prompt that its hash covers, floats kept as PyFloat. */
export interface Content {
  id: string;
  messages: Record<string, unknown>[];
  model: unknown;
  params: Record<string, unknown>;
}

/** Build a version from its content, refusing it unless it hashes to `hash` (as Python's prompt_of). */
export function checkedVersion(content: Content, number: number, hash: string, labels: readonly string[],
  where: string): PromptVersion {
  const actual = contentHash(content.messages, content.model, content.params);
  if (actual !== hash) {
    throw new PromstackError(`${where}: the text hashes to ${actual}, not to its version's ${hash} (changed on ` +
      "the way, or written in a form the TypeScript SDK reads differently); not used");
  }
  if (content.model !== null && content.model !== undefined && typeof content.model !== "string") {
    throw new PromstackError(`${where}: model: must be a text`);
  }
  return new PromptVersion(content.id, number, hash, labels, plain(content.messages) as Message[],
    (content.model as string | undefined) ?? null, plain(content.params) as Record<string, unknown>, where);
}

/** A prompt file's content as Python's from_mapping builds it (YAML, or plain text). */
export function contentOfFile(text: string, suffix: string, defaultId: string, where: string): Content {
  const [stem, , branch] = partition(defaultId, "@");
  if (text.startsWith("\uFEFF")) text = text.slice(1);
  if (TEXT_SUFFIXES.includes(suffix.toLowerCase())) {
    return { id: stem + (branch ? `@${branch}` : ""), messages: [{ role: "user", content: text }], model: null,
      params: {} };
  }
  const data = loadYaml(text, where);
  if (data === null || typeof data !== "object" || Array.isArray(data)) {
    throw new PromstackError(`${where}: a prompt file must be a mapping with template: or messages:`);
  }
  return contentOfMapping(data as Record<string, unknown>, where, stem, branch);
}

function contentOfMapping(data: Record<string, unknown>, where: string, stem: string, branch: string): Content {
  const { template, messages } = data;
  if ((template === undefined || template === null) === (messages === undefined || messages === null)) {
    throw new PromstackError(`${where}: a prompt needs exactly one of template: or messages:`);
  }
  let msgs: Record<string, unknown>[];
  if (template !== undefined && template !== null) {
    if (typeof template !== "string") throw new PromstackError(`${where}: template: must be a text`);
    msgs = [{ role: "user", content: template }];
  } else {
    if (!Array.isArray(messages) || !messages.length) {
      throw new PromstackError(`${where}: messages: must be a non-empty list of {role, content}`);
    }
    msgs = messages.map((m, i) => {
      if (m === null || typeof m !== "object" || !("role" in m) || !("content" in m)) {
        throw new PromstackError(`${where}: messages[${i}]: needs role: and content:`);
      }
      if (!ROLES.has(m.role as string)) throw new PromstackError(`${where}: messages[${i}].role: unknown role`);
      return { ...(m as Record<string, unknown>) };
    });
  }
  let params = { ...((data.params as Record<string, unknown>) ?? {}) };
  if ("response_format" in data) {
    const rf = data.response_format as Record<string, unknown> | null;
    params = { ...params, response_format: rf && rf.type === "json_object" ? { type: "json_object" } : rf };
  }
  for (const key of ["tools", "tool_choice"]) if (key in data) params[key] = data[key];
  const id = data.id === undefined || data.id === null ? stem : String(data.id instanceof PyFloat ? NaN : data.id);
  return { id: branch ? `${id}@${branch}` : id, messages: msgs, model: data.model ?? null, params };
}

function partition(s: string, sep: string): [string, string, string] {
  const i = s.indexOf(sep);
  return i < 0 ? [s, "", ""] : [s.slice(0, i), sep, s.slice(i + 1)];
}

// PyYAML (YAML 1.1) floats and ints, by the scalar's text: 1.0 is a float, 1e3 a text
const PY_FLOAT = /^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$/;
const PY_BOOL = /^(?:yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$/;
const PY_INT = /^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$/;

/** YAML read as PyYAML's safe_load reads it: YAML 1.1, duplicate keys refused, floats kept as PyFloat. */
export function loadYaml(text: string, where: string): unknown {
  const doc = YAML.parseDocument(text, { version: "1.1", uniqueKeys: true, prettyErrors: false });
  if (doc.errors.length) {
    throw new PromstackError(`${where}: not valid YAML: ${doc.errors[0].message.split("\n")[0]}`);
  }
  YAML.visit(doc, {
    Scalar(_key, node) {
      if (node.type !== "PLAIN") return;
      const src = (node as any).source as string;
      if (typeof node.value === "boolean" && !PY_BOOL.test(src)) node.value = src; // y, n: texts for PyYAML
      if (typeof node.value !== "number") return;
      if (PY_FLOAT.test(src)) node.value = new PyFloat(node.value);
      else if (!PY_INT.test(src)) node.value = src; // a text for PyYAML (1e3, ...)
    },
  });
  return doc.toJS({ maxAliasCount: 10_000 });
}
