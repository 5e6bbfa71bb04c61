"""The errors a user catches, at the path the documentation gives:
``from pytest_promstack.errors import PromstackError`` (``pytest.raises(PromstackError)``
around the fixture's or the SDK's calls). They live in ``model/errors.py``; this module
only names them, and imports nothing else."""

from __future__ import annotations

from .model.errors import CallFailed, CaseError, CheckFailed, ConfigError, JudgeError, PromstackError, TemplateError

__all__ = ["CallFailed", "CaseError", "CheckFailed", "ConfigError", "JudgeError", "PromstackError", "TemplateError"]
