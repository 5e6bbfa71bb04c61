"""Secret detectors (see ``detect.py``): vendors' key formats by their prefixes (HIGH), JWTs
whose header decodes, PEM private keys, credentials in URLs, values assigned to a key word
(``password=…``, ``비밀번호: …``; MEDIUM), and a high-entropy fallback (LOW).

Every pattern is precompiled and linear; the patterns that need a marker (``-----BEGIN``,
``://``, ``eyJ``) run only when the text holds it. docs/safety.md ("Detectors") gives the
rules, and why UUIDs, git SHAs, hex digests and identifiers are not secrets."""

from __future__ import annotations

import base64
import binascii
import functools
import json
import math
import re
from collections import Counter
from collections.abc import Iterator

from .findings import HIGH, LOW, MEDIUM, Detector, Finding

_TOKEN_CHAR = r"[A-Za-z0-9_-]"
_WORD_CHAR = re.compile(r"[A-Za-z0-9_]")
_END = r"(?![A-Za-z0-9_-])"  # a key ends a token (its start is checked after its prefix, which keeps
# the prefix first in the pattern: a pattern that starts with a literal is scanned fast)

# (type, detector, pattern): formats whose prefix cannot be chance. Each pattern starts with a
# literal, which the regex engine finds by a fast search instead of trying every position.
_AWS_PREFIXES = ("KIA", "SIA", "BIA", "CCA", "GPA", "IDA", "IPA", "NPA", "NVA", "ROA", "PKA", "SCA")  # after A
_PREFIXED = (
    ("ANTHROPIC_KEY", "anthropic", re.compile(rf"sk-ant-(?:[a-z]+\d\d-)?[A-Za-z0-9_-]{{20,}}{_END}")),
    ("AWS_ACCESS_KEY", "aws-access-key", re.compile(rf"A(?:{'|'.join(_AWS_PREFIXES)})[A-Z0-9]{{16}}(?![A-Za-z0-9])")),
    ("GITHUB_TOKEN", "github",
     re.compile(r"g(?:h[pousr]_[A-Za-z0-9]{36,251}|ithub_pat_[A-Za-z0-9_]{22,251})(?![A-Za-z0-9_])")),
    ("SLACK_TOKEN", "slack",
     re.compile(rf"x(?:ox[abposr]-[A-Za-z0-9-]{{10,250}}|app-\d-[A-Za-z0-9-]{{10,250}}){_END}")),
    ("SLACK_TOKEN", "slack",
     re.compile(r"https://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9_/-]{10,250}")),
    ("GOOGLE_API_KEY", "google", re.compile(rf"AIza[0-9A-Za-z_-]{{35}}{_END}")),
    *(("STRIPE_KEY", "stripe", re.compile(rf"{p}_(?:live|test)_[0-9A-Za-z]{{10,247}}(?![0-9A-Za-z])"))
      for p in ("sk", "rk", "pk")),
    ("STRIPE_KEY", "stripe", re.compile(r"whsec_[0-9A-Za-z]{20,247}(?![0-9A-Za-z])")),
)


def prefixed(text: str) -> Iterator[Finding]:
    for kind, name, pattern in _PREFIXED:
        for m in pattern.finditer(text):
            if not _inside_a_token(text, m.start()):
                yield Finding(m.start(), m.end(), kind, m.group(), HIGH, name)


def _inside_a_token(text: str, at: int) -> bool:
    """A key starts a token: checked after the match, so the pattern can start with its prefix."""
    return at > 0 and bool(_WORD_CHAR.match(text, at - 1))


# --- OpenAI: sk-…, sk-proj-…; real keys mix cases and digits ------------------------------

_OPENAI = re.compile(rf"sk-(?<!{_TOKEN_CHAR}sk-)(?!ant-)(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{{20,}}{_END}")


def openai_keys(text: str) -> Iterator[Finding]:
    if "sk-" not in text:
        return
    for m in _OPENAI.finditer(text):
        key = m.group()
        if _mixed(key):
            yield Finding(m.start(), m.end(), "OPENAI_KEY", key, HIGH, "openai")
        elif re.search(r"\d", key) and len(key) >= 32:
            yield Finding(m.start(), m.end(), "OPENAI_KEY", key, MEDIUM, "openai")


# --- AWS secret access key: 40 base64 characters ------------------------------------------

_AWS_SECRET = re.compile(r"[A-Za-z0-9+/]{40}")
_AWS_WORDS = re.compile(r"(?i)(?:aws|secret[_ ]?access[_ ]?key|secretaccesskey)[^\n]{0,60}$")


def aws_secrets(text: str) -> Iterator[Finding]:
    for start, end in _tokens(text):
        key = text[start:end]
        if not _AWS_SECRET.fullmatch(key) or _HEX.fullmatch(key) or not _mixed(key):
            continue
        if _AWS_WORDS.search(text, max(0, start - 80), start):
            yield Finding(start, end, "AWS_SECRET_KEY", key, HIGH, "aws-secret-key")
        elif entropy(key) >= 4.2:
            yield Finding(start, end, "AWS_SECRET_KEY", key, LOW, "aws-secret-key")


# --- JWT: header.payload.signature, the header a JSON object with "alg" --------------------

_JWT = re.compile(rf"(eyJ(?<!{_TOKEN_CHAR}eyJ)[A-Za-z0-9_-]{{6,}})\.([A-Za-z0-9_-]{{4,}})\.([A-Za-z0-9_-]*){_END}")


def jwts(text: str) -> Iterator[Finding]:
    if "eyJ" not in text:
        return
    for m in _JWT.finditer(text):
        header = _b64json(m.group(1))
        if isinstance(header, dict) and "alg" in header:
            yield Finding(m.start(), m.end(), "JWT", m.group(), HIGH, "jwt")


def _b64json(part: str) -> object:
    try:
        return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    except (binascii.Error, ValueError):
        return None


# --- PEM private keys: the block, or what is left of it when the answer was cut -----------

_PEM_BEGIN = re.compile(r"-----BEGIN ((?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?)-----")
_PEM_BODY = re.compile(r"[A-Za-z0-9+/=\s:,.-]*")
_PEM_LIMIT = 20_000


def private_keys(text: str) -> Iterator[Finding]:
    if "-----BEGIN" not in text:
        return
    for m in _PEM_BEGIN.finditer(text):
        footer = f"-----END {m.group(1)}-----"
        end = text.find(footer, m.end(), m.end() + _PEM_LIMIT)
        if end >= 0:
            end += len(footer)
        else:  # truncated: the base64 lines that follow still leak the key
            body = _PEM_BODY.match(text, m.end(), m.end() + _PEM_LIMIT)
            end = m.end() + len(body.group().rstrip()) if body else m.end()
        yield Finding(m.start(), end, "PRIVATE_KEY", text[m.start():end], HIGH, "private-key")


# --- credentials in a URL: scheme://user:password@host ------------------------------------

_URL_CREDENTIALS = re.compile(r"(?<![A-Za-z0-9+.-])[A-Za-z][A-Za-z0-9+.-]{1,20}://([^\s:/?#@]{0,100}):([^\s/?#@]{1,200})@"
                              r"(?=[A-Za-z0-9\[])")
_PLACEHOLDER = re.compile(
    r"(?i)\**|x+|\.+|<[^>]*>|\$\{?[A-Za-z_][A-Za-z0-9_]*\}?|\{\{.*\}\}|%s|%\([a-z_]+\)s|\[?redacted\]?|null|none"
    r"|password|passwd|pass|pwd|secret|changeme|your[_-]?\w*|my[_-]?\w*|example\w*|test|dummy|placeholder|token|key")


def url_credentials(text: str) -> Iterator[Finding]:
    if "://" not in text:
        return
    for m in _URL_CREDENTIALS.finditer(text):
        level = LOW if _PLACEHOLDER.fullmatch(m.group(2)) else HIGH
        yield Finding(m.start(1), m.end(2), "URL_CREDENTIALS", text[m.start(1):m.end(2)], level, "url-credentials")


# --- a value given to a key word: password=…, "api_key": "…", 비밀번호: …, Bearer … -------

_KEY_WORDS = (r"password|passwd|passphrase|pwd|secret|secret[_-]?key|api[_-]?key|apikey|access[_-]?key"
              r"|access[_-]?token|auth[_-]?token|refresh[_-]?token|client[_-]?secret|token|private[_-]?key|credentials?")
# anchored on the ":" or "=" (rare in prose): the key word is read back from it, the value on
_SEPARATOR = re.compile(r"[:=]")
_KEY_STEMS = ("pass", "pwd", "secret", "key", "token", "credential")
_KEY_BEFORE = re.compile(rf"(?i)(?<![A-Za-z0-9])(?:{_KEY_WORDS})[\"']?\s*$")
_VALUE_AFTER = re.compile(r">?\s*[\"']?([^\s\"'`,;<>{}()\[\]]{6,200})")
_KO_KEY_WORDS = ("비밀번호", "패스워드", "암호", "비번", "토큰", "시크릿", "인증키", "API")
_KO_ASSIGNED = re.compile(r"(?:비밀번호|패스워드|암호|비번|토큰|시크릿|인증키|API ?키)\s*(?:[:=]|은|는)\s*[\"']?"
                          r"([^\s\"'`,;<>가-힣]{6,200})")
_BEARER = re.compile(r"(?<![A-Za-z])(?i:bearer) ([A-Za-z0-9._~+/-]{16,}=*)")


def assigned(text: str) -> Iterator[Finding]:
    for value in _assigned_values(text):
        raw = value.group(1).rstrip(".")
        if _PLACEHOLDER.fullmatch(raw) or len(set(raw)) < 3:
            continue
        if raw.isalpha() and raw.islower() and len(raw) < 12:  # "password: required"
            continue
        yield Finding(value.start(1), value.start(1) + len(raw), "SECRET", raw, MEDIUM, "assigned")


def _assigned_values(text: str) -> Iterator[re.Match[str]]:
    for sep in _SEPARATOR.finditer(text):
        before = text[max(0, sep.start() - 40):sep.start()].lower()
        if any(w in before for w in _KEY_STEMS) and _KEY_BEFORE.search(text, max(0, sep.start() - 40), sep.start()):
            value = _VALUE_AFTER.match(text, sep.end())
            if value:
                yield value
    if any(word in text for word in _KO_KEY_WORDS):
        yield from _KO_ASSIGNED.finditer(text)
    if "earer" in text or "EARER" in text:
        yield from _BEARER.finditer(text)


# --- high-entropy fallback ----------------------------------------------------------------

# a token of base64/hex-ish characters, 16 to 512 long (its start checked after its first character,
# so that the scan can skip to the characters of the class)
_TOKEN = re.compile(r"[A-Za-z0-9+/_-](?<![A-Za-z0-9+/_=-].)[A-Za-z0-9+/_-]{15,511}={0,2}(?![A-Za-z0-9+/_=-])")
_HEX = re.compile(r"[0-9a-fA-F]+")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_NEAR_WORDS = re.compile(r"(?i)(?:key|token|secret|passw|credential|auth|bearer|비밀번호|토큰|시크릿|인증키|암호)"
                         r"[^\n]{0,30}$")


@functools.lru_cache(maxsize=4)
def _tokens(text: str) -> tuple[tuple[int, int], ...]:
    """The tokens' spans: one scan for the AWS secret rule and the fallback on the same text."""
    return tuple(m.span() for m in _TOKEN.finditer(text))


def high_entropy(text: str) -> Iterator[Finding]:
    for start, end in _tokens(text):
        token = text[start:end]
        if _UUID.fullmatch(token) or text.endswith("base64,", 0, start):
            continue
        near = bool(_NEAR_WORDS.search(text, max(0, start - 40), start))
        if _random_enough(token.rstrip("="), near):
            yield Finding(start, end, "SECRET", token, LOW, "entropy")


def _random_enough(token: str, near: bool) -> bool:
    """Away from a key word: 24+ characters mixing upper, lower and digits, not hex, with
    entropy near that of random base64. Next to one: 16+ characters, hex allowed."""
    if _word_share(token) >= 0.5:
        return False
    if near:
        return len(token) >= 16 and bool(re.search(r"\d", token)) and entropy(token) >= 3.5
    if len(token) < 24 or _HEX.fullmatch(token) or not _mixed(token):
        return False
    return entropy(token) >= min(4.5, 0.87 * math.log2(len(token)))


def entropy(token: str) -> float:
    """Shannon entropy in bits per character."""
    counts = Counter(token)
    return -sum(c / len(token) * math.log2(c / len(token)) for c in counts.values())


def _mixed(token: str) -> bool:
    return bool(re.search(r"[A-Z]", token) and re.search(r"[a-z]", token) and re.search(r"\d", token))


def _word_share(token: str) -> float:
    """The share of the token in word-like runs (``Request``, ``http``): an identifier or a path."""
    return sum(len(w) for w in re.findall(r"[A-Z]?[a-z]{3,}", token)) / len(token)


DETECTORS = [
    Detector("prefixed", tuple(dict.fromkeys(kind for kind, _, _ in _PREFIXED)), prefixed),
    Detector("openai", ("OPENAI_KEY",), openai_keys),
    Detector("aws-secret-key", ("AWS_SECRET_KEY",), aws_secrets),
    Detector("jwt", ("JWT",), jwts),
    Detector("private-key", ("PRIVATE_KEY",), private_keys),
    Detector("url-credentials", ("URL_CREDENTIALS",), url_credentials),
    Detector("assigned", ("SECRET",), assigned),
    Detector("entropy", ("SECRET",), high_entropy),
]
