"""Issue 15's injection figures: precision and recall of ``safety/injection.py`` on its fixtures
(``tests/data/safety/injection.yaml``) at the ``injection-score`` threshold, per language and
per family, and its speed: 1,000 texts (the fixtures, cycled) and one megabyte of ordinary
text, of near misses, and of base64.

    python benchmarks/bench_injection.py --repeat 5

The fixtures were written with the rules, so the figures say that the rules do what the
fixtures state, not how they fare on attacks nobody wrote down."""

from __future__ import annotations

import argparse
import base64
import statistics
import sys
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pytest_promstack.safety.injection import FAMILIES, score

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "data" / "safety" / "injection.yaml"
THRESHOLD = 0.5


def quality(data: dict) -> None:
    attacks, benign = data["attacks"], data["benign"]
    for lang in ("en", "ko", None):
        pos = [a for a in attacks if lang in (None, a["lang"])]
        neg = [b for b in benign if lang in (None, b["lang"])]
        tp = sum(score(a["text"]).score >= THRESHOLD for a in pos)
        fp = sum(score(b["text"]).score >= THRESHOLD for b in neg)
        weak = sum(0 < score(b["text"]).score < THRESHOLD for b in neg)
        precision = tp / (tp + fp) if tp + fp else 1.0
        print(f"{lang or 'all':>3}: {len(pos)} attacks, {len(neg)} benign texts; recall {tp / len(pos):.1%}, "
              f"precision {precision:.1%}, false positives {fp}, benign texts with a weak signal (<{THRESHOLD}) {weak}")
    for family in FAMILIES:
        meant = [a for a in attacks if family in a["families"]]
        found = sum(family in score(a["text"]).families for a in meant)
        print(f"     {family:<22} found in {found}/{len(meant)} attacks meant to have it")


def timed(label: str, texts: list[str], repeat: int) -> None:
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        for text in texts:
            score(text)
        runs.append(time.perf_counter() - start)
    size = sum(len(t) for t in texts)
    print(f"{label:<40} {len(texts):>5} texts, {size:>9,} chars: median {statistics.median(runs) * 1000:8.1f} ms "
          f"(runs: {', '.join(f'{r * 1000:.0f}' for r in runs)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    data = yaml.safe_load(FIXTURES.read_text(encoding="utf-8"))
    quality(data)
    texts = [item["text"] for item in data["attacks"] + data["benign"]]
    thousand = (texts * (1000 // len(texts) + 1))[:1000]
    prose = (Path(__file__).resolve().parents[1] / "docs").glob("*.md")
    docs = "".join(p.read_text(encoding="utf-8") for p in sorted(prose))
    megabyte = 1_000_000
    timed("1,000 fixture texts", thousand, args.repeat)
    timed("1 MB of docs/*.md (English and Korean)", [(docs * (megabyte // len(docs) + 1))[:megabyte]], args.repeat)
    near = "ignore all the previous send the conversation repeat the text you are now 이전 지시 시스템 "
    timed("1 MB of near misses", [(near * (megabyte // len(near) + 1))[:megabyte]], args.repeat)
    blob = base64.b64encode(bytes(range(256)) * (megabyte // 342)).decode()[:megabyte]
    timed("1 MB of base64 (binary)", [blob], args.repeat)


if __name__ == "__main__":
    main()
