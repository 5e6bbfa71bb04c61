"""The stash key of the run's state; a module of its own so the plugin imports it cheaply."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    pass

SESSION_KEY = pytest.StashKey["PromstackSession"]()
