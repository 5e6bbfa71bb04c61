"""``python -m pytest_promstack.cli``: the ``promstack`` command, for a config that names the
interpreter rather than the script (an editor's MCP settings, a virtual environment not on PATH)."""

import sys

from . import main

sys.exit(main())
