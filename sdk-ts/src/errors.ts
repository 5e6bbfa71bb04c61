/** Every error of the SDK: one line that names what was asked, what is known and the fix. */
export class PromstackError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PromstackError";
  }
}

/** A template that cannot be rendered (a missing variable, syntax the SDK does not render like Jinja2). */
export class TemplateError extends PromstackError {
  constructor(message: string) {
    super(message);
    this.name = "TemplateError";
  }
}
