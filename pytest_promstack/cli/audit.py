"""``promstack audit verify``: check the audit trail's hash chain (safety/audit_verify.py)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..model.errors import PromstackError
from ..util.text import safe


def verify(args: argparse.Namespace) -> int:
    """Exit 0 with one line when the chain holds; 1 naming each ``file:line`` where it does not;
    4 when there is no log at the path."""
    from ..safety.audit_verify import verify as check

    path = _path(args)
    if not path.exists() and not any(path.parent.glob(f"{path.stem}.*{path.suffix}")):
        raise PromstackError(f"no audit log at {path}: pass --path PATH, or turn it on with audit: {{enabled: true}} "
                             "in promstack.yaml")
    head = args.head
    if head is not None and (len(head) < 12 or any(c not in "0123456789abcdefABCDEF" for c in head)):
        raise PromstackError(f"--head {head}: give a hash of at least 12 hex digits, as verify printed it")
    report = check(path, head)
    for line in report.warnings:
        print(safe(f"audit: warning: {line}"), file=sys.stderr)
    for line in report.problems:
        print(safe(f"audit: {line}"))
    print(report.summary())
    return 0 if report.intact else 1


def _path(args: argparse.Namespace) -> Path:
    """--path as given (relative to here), else the configured audit.path."""
    if args.path:
        return Path(args.path)
    from ..config.settings import load_or_default
    from ..pipeline.runner import default_root

    root = Path.cwd() if args.config else default_root(Path.cwd())  # --config is relative to here, as elsewhere
    settings = load_or_default(root, {"config": args.config})
    return settings.root / settings.audit.path
