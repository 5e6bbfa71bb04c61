"""Guards at run time: what the SDK's ``complete()`` and the fixture do to a request before it
leaves and to an answer before the caller sees it (``guards:`` in promstack.yaml).

Input: the user messages are scored for prompt injection (``injection.score``); above the
threshold a call is flagged (it goes ahead, the decision says so) or blocked (no call is
made; the reply is the blocked notice). Masking the request (``input.mask``) is the engine's
``mask_inputs``. Output: an answer holding a secret or sensitive personal data (the
``sensitive_types``) is replaced by the ``sensitive`` notice; one holding a banned word by the
``harmful`` notice. Every decision is a ``Decision``, logged by the caller (call log, audit).

Pure: the settings arrive as ``GuardPolicy``, built by config/settings.py."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

# high-risk identifiers and every credential; an e-mail address, a phone number or an address
# in an answer is often the business's own (a support line), so they are opt-in
DEFAULT_SENSITIVE = ("KR_RRN", "KR_FRN", "CREDIT_CARD", "IBAN", "US_SSN")


@dataclass(frozen=True)
class Decision:
    """One guard's verdict on one call: ``guard`` (input.injection, input.mask,
    output.sensitive, output.harmful), ``action`` (flagged, blocked, masked, replaced) and
    why (types and rules, injection families, banned words: never the value itself)."""

    guard: str
    action: str
    detail: str
    score: float | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"guard": self.guard, "action": self.action, "detail": self.detail}
        if self.score is not None:
            out["score"] = round(self.score, 3)
        return out


@dataclass(frozen=True)
class GuardPolicy:
    mask: bool = False
    injection: str = "flag"  # off | flag | block
    threshold: float = 0.5
    blocked_notice: str = "[요청이 차단되었습니다]"
    sensitive: str | None = "[응답 필터링됨]"  # None: answers with sensitive data pass
    sensitive_types: tuple[str, ...] = field(default=())  # () means DEFAULT_SENSITIVE and every secret
    harmful: str = "[부적절한 응답]"
    banned: tuple[str, ...] = ()  # the ban list's items (a file's lines already read)


class Guards:
    def __init__(self, policy: GuardPolicy) -> None:
        from .banned import BanList
        from .findings import SECRETS

        self.policy = policy
        self.types = policy.sensitive_types or (*SECRETS, *DEFAULT_SENSITIVE)
        self.banned = BanList(policy.banned) if policy.banned else None

    def check_input(self, messages: Sequence[dict[str, Any]]) -> Decision | None:
        """The injection verdict on the user messages (a system prompt is the application's own),
        or None when it is below the threshold or the guard is off."""
        if self.policy.injection == "off":
            return None
        from .injection import score

        texts = [_text(m.get("content")) for m in messages if m.get("role") == "user"]
        verdict = max((score(t) for t in texts if t), key=lambda v: v.score, default=None)
        if verdict is None or verdict.score < self.policy.threshold:
            return None
        from .mask import Masker

        action = "blocked" if self.policy.injection == "block" else "flagged"
        # the evidence quotes the input: its personal data and secrets masked (every type; the masker
        # reads the messages first, so a value the evidence shows in part is masked too), then cut
        masker = Masker()
        for t in texts:
            masker.mask(t)
        return Decision("input.injection", action, masker.mask(verdict.describe())[:300], verdict.score)

    def filter_output(self, text: str) -> tuple[str, list[Decision]]:
        """``text``, or its notice when it holds sensitive data or a banned word, with the decisions."""
        if not text:
            return text, []
        decisions: list[Decision] = []
        if self.policy.sensitive is not None:
            from .detect import find

            found = find(text, self.types, 0.6)
            if found:
                kinds = sorted({f"{f.type} ({f.detector})" for f in found})
                decisions.append(Decision("output.sensitive", "replaced", ", ".join(kinds)))
                return self.policy.sensitive, decisions
        if self.banned is not None:
            hits = self.banned.find(text, limit=5)
            if hits:
                words = sorted({h.word for h in hits})
                decisions.append(Decision("output.harmful", "replaced", "banned: " + ", ".join(words)))
                return self.policy.harmful, decisions
        return text, decisions


def _text(content: Any) -> str:
    """A message's text: a string, or the text parts of a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""
