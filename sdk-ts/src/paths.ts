/** A prompt id as one folder name, exactly as Python's util/paths.py safe_name encodes it. */
const KEPT = /^[\p{L}\p{N}_.@-]$/u;

export function safeName(name: string): string {
  if (!name) return "%";
  let out = "";
  let first = true;
  for (const c of name) {
    out += KEPT.test(c) && !(first && c === ".") ? c : percent(c);
    first = false;
  }
  return out;
}

function percent(c: string): string {
  return [...Buffer.from(c, "utf8")].map((b) => `%${b.toString(16).toUpperCase().padStart(2, "0")}`).join("");
}

/** The folder of before ids were encoded injectively (read only, its content hash verified). */
export function legacyName(id: string): string {
  const name = id.replace(/[^\p{L}\p{N}_.@-]/gu, "_");
  return !name || name.startsWith(".") ? `_${name}` : name;
}
