/**
 * The registry from its committed files (`new Client({ root })`) or from `promstack serve`
 * (`new Client({ url, token })`): versions kept for the client's life (they never change),
 * labels read again after `labelTtl` seconds (a deploy moves them), as the Python SDK does.
 */
import { promises as fs, realpathSync } from "node:fs";
import * as path from "node:path";
import { parseJson } from "./canonical";
import { PromstackError } from "./errors";
import { checkedVersion, contentOfFile, type Content, PromptVersion } from "./prompt";
import { legacyName, safeName } from "./paths";

const SCHEMA = "promstack-prompts/1";

export interface ClientOptions {
  /** The project's root, whose `.promstack/prompts/` holds the registry (default: the current directory). */
  root?: string;
  /** The address of `promstack serve` (http or https), instead of the files. */
  url?: string;
  /** Its bearer token (default: $PROMSTACK_SERVE_TOKEN). */
  token?: string;
  /** Seconds a label is trusted before it is read again (default 60). */
  labelTtl?: number;
  /** Seconds per HTTP request (default 10). */
  timeout?: number;
  /** The clock labels expire by, in seconds (for tests). */
  clock?: () => number;
}

export type PromptId = string | number;

export interface Entry {
  labels: Record<string, number>;
  versions: { number: number; hash: string; file?: string }[];
}

interface Source {
  entry(id: string): Promise<Entry>;
  content(id: string, number: number, entry: Entry): Promise<Content>;
  where(id: string, number: number): string;
}

export class Client {
  readonly labelTtl: number;
  private readonly source: Source;
  private readonly clock: () => number;
  private readonly versions = new Map<string, Promise<PromptVersion>>();
  private readonly labels = new Map<string, { number: number; until: number; labels: string[] }>();

  constructor(options: ClientOptions = {}) {
    if (options.root !== undefined && options.url !== undefined) {
      throw new PromstackError("new Client(): give root (the registry's files) or url (promstack serve), not both");
    }
    this.labelTtl = options.labelTtl ?? 60;
    this.clock = options.clock ?? (() => performance.now() / 1000);
    this.source = options.url !== undefined
      ? new HttpSource(options.url, options.token ?? process.env.PROMSTACK_SERVE_TOKEN, options.timeout ?? 10)
      : new FileSource(options.root ?? process.cwd());
  }

  /** By `version`, by `label`, or (neither) the `production` label, else the latest version. */
  async getPrompt(query: { id: PromptId; version?: number; label?: string }): Promise<PromptVersion> {
    const id = String(query.id);
    const { version, label } = query;
    if (version !== undefined && label !== undefined) {
      throw new PromstackError("getPrompt: pass version or label, not both");
    }
    if (version !== undefined) {
      if (!Number.isInteger(version) || version < 1) {
        throw new PromstackError(`getPrompt: version ${version} of ${JSON.stringify(id)}: a version is a whole ` +
          "number from 1");
      }
      const entry = await this.source.entry(id);
      const known = entry.versions.map((v) => v.number);
      if (!known.includes(version)) {
        throw new PromstackError(`prompt ${JSON.stringify(id)} has no version ${version} (versions ` +
          `${Math.min(...known)} to ${Math.max(...known)})`);
      }
      return (await this.version(id, version, entry)).withLabels(labelsOf(entry, version));
    }
    if (label !== undefined) return this.byLabel(id, label, true);
    const cached = this.labels.get(`${id}\u0000production`);
    if (cached && this.clock() < cached.until) return this.byLabel(id, "production", true);
    const entry = await this.source.entry(id);
    if ("production" in entry.labels) return this.byLabel(id, "production", true, entry);
    const last = entry.versions[entry.versions.length - 1].number;
    return (await this.version(id, last, entry)).withLabels(labelsOf(entry, last));
  }

  private async byLabel(id: string, label: string, strict: boolean, fresh?: Entry): Promise<PromptVersion> {
    const key = `${id}\u0000${label}`;
    let cached = this.labels.get(key);
    let entry = fresh;
    if (!cached || this.clock() >= cached.until) {
      entry ??= await this.source.entry(id);
      const number = entry.labels[label];
      if (number === undefined && strict) {
        const names = Object.keys(entry.labels).sort().join(", ") || "none";
        throw new PromstackError(`prompt ${JSON.stringify(id)} has no label ${JSON.stringify(label)} (labels: ` +
          `${names}); set one with \`promstack deploy --prompt ${id} --to ${label}\``);
      }
      cached = { number, until: this.clock() + this.labelTtl, labels: labelsOf(entry, number) };
      this.labels.set(key, cached);
    }
    return (await this.version(id, cached.number, entry)).withLabels(cached.labels);
  }

  private version(id: string, number: number, entry?: Entry): Promise<PromptVersion> {
    const key = `${id}\u0000${number}`;
    let found = this.versions.get(key);
    if (!found) {
      found = (async () => {
        const e = entry ?? await this.source.entry(id);
        const v = e.versions.find((x) => x.number === number);
        if (!v) throw new PromstackError(`prompt ${JSON.stringify(id)} has no version ${number}`);
        const where = this.source.where(id, number);
        const content = await this.source.content(id, number, e);
        if (content.id !== id && !content.id.startsWith(`${id}@`)) {
          throw new PromstackError(`${where}: holds prompt ${JSON.stringify(content.id)}, not ${JSON.stringify(id)}`);
        }
        return checkedVersion({ ...content, id }, number, v.hash, [], where);
      })();
      this.versions.set(key, found);
      found.catch(() => this.versions.delete(key)); // a failure is not kept: the next call tries again
    }
    return found;
  }
}

function labelsOf(entry: Entry, number: number): string[] {
  return Object.entries(entry.labels).filter(([, n]) => n === number).map(([name]) => name).sort();
}

function isObject(x: unknown): x is Record<string, unknown> {
  return x !== null && typeof x === "object" && !Array.isArray(x);
}

function checkedEntry(raw: unknown, where: string, files: boolean): Entry {
  const problem = (what: string) => new PromstackError(`${where}: ${what}`);
  if (!isObject(raw)) throw problem("not an object");
  const { versions, labels } = raw;
  if (!Array.isArray(versions) || !versions.length) throw problem("versions: expected a non-empty list");
  versions.forEach((v, i) => {
    if (!isObject(v) || !Number.isInteger(v.number) || typeof v.hash !== "string") {
      throw problem(`versions[${i}]: expected {number, hash}`);
    }
    if (files && (typeof v.file !== "string" || /[/\\]/.test(v.file) || ["", ".", ".."].includes(v.file))) {
      throw problem(`versions[${i}].file: not a file name in the prompt's folder`);
    }
  });
  const labelMap = labels ?? {};
  if (!isObject(labelMap) || !Object.values(labelMap).every((n) => Number.isInteger(n))) {
    throw problem("labels: expected an object of label -> version number");
  }
  return { versions: versions as Entry["versions"], labels: labelMap as Record<string, number> };
}

/** The committed registry: `<root>/.promstack/prompts/index.json` and the version files beside it. */
class FileSource implements Source {
  readonly dir: string;
  readonly index: string;

  constructor(readonly root: string) {
    this.dir = path.join(path.resolve(root), ".promstack", "prompts");
    this.index = path.join(this.dir, "index.json");
  }

  private rel(p: string): string {
    return path.relative(process.cwd(), p) || p;
  }

  async entry(id: string): Promise<Entry> {
    let text: string;
    try {
      text = await fs.readFile(this.index, "utf8");
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new PromstackError(code === "ENOENT"
        ? `${this.rel(this.index)}: no prompt registry at ${this.root}; give new Client({ root }) the project's ` +
          "folder (a promstack run or `promstack prompt list` records the prompts)"
        : `${this.rel(this.index)}: unreadable (${code}); restore it from git (git checkout -- .promstack/prompts)`);
    }
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch (err) {
      throw new PromstackError(`${this.rel(this.index)}: not JSON (${(err as Error).message}); restore it from git ` +
        "(git checkout -- .promstack/prompts)");
    }
    if (!isObject(data) || data.schema !== SCHEMA || !isObject(data.prompts)) {
      throw new PromstackError(`${this.rel(this.index)}: not a promstack prompt registry (${SCHEMA})`);
    }
    const prompts = data.prompts;
    if (!Object.prototype.hasOwnProperty.call(prompts, id)) {
      throw new PromstackError(`prompt ${JSON.stringify(id)} is not in the registry ${this.rel(this.index)} ` +
        `(known: ${knownIds(Object.keys(prompts))}); a promstack run or \`promstack prompt list\` records it`);
    }
    return checkedEntry(prompts[id], `${this.rel(this.index)}: prompts.${id}`, true);
  }

  where(id: string, number: number): string {
    return `${this.rel(this.dir)}: prompt ${JSON.stringify(id)} v${number}`;
  }

  async content(id: string, number: number, entry: Entry): Promise<Content> {
    const file = entry.versions.find((v) => v.number === number)?.file as string;
    let target = path.join(this.dir, safeName(id), file);
    const old = path.join(this.dir, legacyName(id), file);
    if (!(await exists(target)) && (await exists(old))) target = old;
    let text: string;
    try {
      const real = realpathSync(target);
      if (!real.startsWith(realpathSync(this.dir) + path.sep)) {
        throw new PromstackError(`${this.rel(target)}: leads outside the registry (${real}); restore the registry ` +
          "from git (git checkout -- .promstack/prompts)");
      }
      text = await fs.readFile(real, "utf8");
    } catch (err) {
      if (err instanceof PromstackError) throw err;
      throw new PromstackError(`${this.rel(target)}: missing or unreadable, the file of prompt ${JSON.stringify(id)} ` +
        `v${number}; restore the registry from git (git checkout -- .promstack/prompts)`);
    }
    return contentOfFile(text, path.extname(file), id, this.rel(target));
  }
}

async function exists(p: string): Promise<boolean> {
  return fs.access(p).then(() => true, () => false);
}

function knownIds(ids: string[]): string {
  return ids.length ? ids.sort().join(", ") : "none yet";
}

/** `promstack serve`: versions once, entries revalidated with their ETag; redirects refused. */
class HttpSource implements Source {
  readonly url: string;
  private readonly token: string | undefined;
  private readonly etags = new Map<string, { etag: string; doc: unknown }>();

  constructor(url: string, token: string | undefined, private readonly timeout: number) {
    let parsed: URL | undefined;
    try {
      parsed = new URL(url);
    } catch {
      parsed = undefined;
    }
    if (!parsed || !["http:", "https:"].includes(parsed.protocol) || !parsed.hostname) {
      throw new PromstackError(`new Client({ url: ${JSON.stringify(url)} }): give the http(s) address of ` +
        "`promstack serve`, such as http://127.0.0.1:8765");
    }
    this.url = url.replace(/\/+$/, "");
    this.token = token || undefined;
    if (this.token !== undefined && !/^[\x21-\x7e]+$/.test(this.token)) {
      throw new PromstackError("the registry API's token is ASCII (letters, digits, -._~+/); this one cannot be " +
        "sent in a header");
    }
  }

  where(id: string, number: number): string {
    return `${this.url} prompt ${JSON.stringify(id)} v${number}`;
  }

  async entry(id: string): Promise<Entry> {
    const p = `/v1/prompts/${encodeURIComponent(id)}`;
    const doc = await this.get(p);
    try {
      return checkedEntry(doc, `${this.url}${p}`, false);
    } catch {
      throw this.odd(p);
    }
  }

  async content(id: string, number: number): Promise<Content> {
    const p = `/v1/prompts/${encodeURIComponent(id)}/versions/${number}`;
    const doc = await this.get(p);
    if (!isObject(doc) || doc.number !== number || typeof doc.hash !== "string" || !Array.isArray(doc.messages) ||
      !doc.messages.every(isObject) || !(doc.params === undefined || doc.params === null || isObject(doc.params))) {
      throw this.odd(p);
    }
    return { id: String(doc.id), messages: doc.messages, model: doc.model ?? null,
      params: (doc.params as Record<string, unknown>) ?? {} };
  }

  private odd(p: string): PromstackError {
    return new PromstackError(`${this.url}${p}: not an answer of promstack's registry API (another server at that ` +
      "address?)");
  }

  private async get(p: string): Promise<unknown> {
    const headers: Record<string, string> = { Accept: "application/json" };
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    const known = this.etags.get(p);
    if (known) headers["If-None-Match"] = known.etag;
    let answer: Response;
    let body: string;
    try {
      answer = await fetch(this.url + p, { headers, redirect: "manual", signal: AbortSignal.timeout(this.timeout * 1000) });
      body = await answer.text();
    } catch (err) {
      const e = err as Error & { cause?: { code?: string; message?: string } };
      const reason = e.name === "TimeoutError" ? `no answer within ${this.timeout} s`
        : e.cause?.code ?? e.cause?.message ?? e.message;
      throw new PromstackError(`${this.url}: cannot read the prompt registry there (${reason}); is \`promstack ` +
        "serve` running?");
    }
    if (answer.status === 304 && known) return known.doc;
    if (answer.status >= 300 && answer.status < 400) {
      throw new PromstackError(`${this.url}: the registry API answered with a redirect (HTTP ${answer.status} to ` +
        `${answer.headers.get("location") ?? "?"}), which is not followed (the token would go along); give ` +
        "new Client({ url }) the final address");
    }
    let doc: unknown;
    try {
      doc = parseJson(body);
    } catch {
      doc = undefined;
    }
    if (answer.status === 401) {
      throw new PromstackError(`${this.url}: the registry API wants a bearer token: new Client({ url, token }) or ` +
        `$PROMSTACK_SERVE_TOKEN${this.token ? " (the one given was refused)" : ""}`);
    }
    if (answer.status !== 200) {
      const said = isObject(doc) && typeof doc.error === "string" ? doc.error : undefined;
      if (said === undefined) throw this.odd(p);
      throw new PromstackError(answer.status === 404 ? `${said} (at ${this.url})` :
        `${this.url}: the registry API answered ${answer.status}: ${said}`);
    }
    if (doc === undefined) throw this.odd(p);
    const etag = answer.headers.get("etag");
    if (etag) this.etags.set(p, { etag, doc });
    return doc;
  }
}
