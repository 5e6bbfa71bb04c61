"""The size limit of what a template makes, shared by the sandbox (util/sandbox.py) and the
plain templates that render without Jinja2 (plan/templates.py): importing it costs nothing."""

MAX_SIZE = 4 * 1024 * 1024  # characters of one value, items of one list, and of the rendered text
