export { Client, type ClientOptions, type PromptId } from "./client";
export { PromptVersion, type Message } from "./prompt";
export { PromstackError, TemplateError } from "./errors";
export { canonicalJson, contentHash } from "./canonical";
export { safeName } from "./paths";
