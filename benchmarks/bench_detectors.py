"""The PII and secret detectors: precision and recall per type on the fixtures, and the cost of
masking.

1. Over ``tests/data/safety/*.yaml`` (the fixtures of tests/unit/test_detectors.py), every
   finding is matched to the fixture's truth by exact type and span: true positives, false
   positives (reported, not in the truth), false negatives (in the truth, not reported). Once
   with every finding, once at MEDIUM and above (what masking and ``no-pii`` use by default,
   the truth cut at the same level).
2. N typical answers of about 300 characters (Korean and English, a share of them carrying
   PII or a key; made up from templates with a fixed seed): ``Masker().mask()`` on each with a
   new masker per answer, as one per case; the median of R rounds, and the cost per 1,000.
   The planted values must all be masked and the clean answers left alone (counted).
3. ``find(text)`` on about 1 MB: the answers joined, and the same with PII in every answer.
4. What masking adds to a run of N cases, as promstack writes it: each answer as a case record
   (its question in ``vars`` and ``messages``, its answer in ``output`` and in a failed
   assertion's reason) through ``results.masking.masked`` (the results JSON and the HTML
   report), side by side with ``json.dumps`` of the same document unmasked, which every run pays.

    python benchmarks/bench_detectors.py --answers 1000 --repeat 5
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pytest_promstack.safety.detect import find
from pytest_promstack.safety.findings import MEDIUM, TYPES
from pytest_promstack.safety.mask import Masker
from tests.unit.test_detectors import LEVELS, load_fixtures, spans, truth

KO = ["안녕하세요, 고객님. 문의하신 환불은 영업일 기준 3~5일 이내에 처리됩니다.",
      "주문하신 상품은 내일 출고 예정이며 배송 조회는 앱의 주문 내역에서 확인하실 수 있습니다.",
      "정기 구독 요금은 월 9,900원이며 첫 달은 무료입니다. 해지는 설정에서 언제든지 가능합니다.",
      "고객님의 등급은 골드이며 누적 포인트는 12,345점입니다. 유효기간은 2025-12-31까지입니다.",
      "추가 문의는 고객센터 1588-1234 로 연락 주시거나 앱의 1:1 문의를 이용해 주세요.",
      "요청하신 서류는 영업일 기준 2일 안에 등록하신 주소로 발송해 드리겠습니다. 감사합니다."]
EN = ["Thanks for reaching out. Your refund will be processed within 5-7 business days.",
      "Your order #10234587 has shipped and should arrive by Friday; tracking is in the app.",
      "To reset your password, open Settings > Security and follow the link we email you.",
      "The subscription renews on the 1st of each month at $9.99; you can cancel at any time.",
      "Version 2.4.1 fixed the sync issue; please update and restart the app if it persists.",
      "We have noted your feedback and passed it to the product team for the next release."]
# (sentence with {v}, the value planted): Korean templates for Korean answers, English for English
PII_KO = ["홍길동 고객님, 연락처 {v} 로 안내드렸습니다.", "주민등록번호 {v} 확인되었습니다.",
          "배송지는 {v} 입니다.", "영수증을 {v} 로 보냈습니다."]
PII_EN = ["Card {v} was charged.", "We will call you on {v}.", "Contact {v} for help.",
          "Your API key {v} must stay private."]
CARDS = ["4111 1111 1111 1111", "5555 5555 5555 4444", "3782 822463 10005", "6011111111111117"]


def rrn(rnd: random.Random) -> str:
    """A valid pre-2020 resident registration number (check digit computed)."""
    front = f"{rnd.randint(60, 99):02d}{rnd.randint(1, 12):02d}{rnd.randint(1, 28):02d}{rnd.choice('12')}"
    digits = front + f"{rnd.randint(0, 99999):05d}"
    total = sum(w * int(d) for w, d in zip((2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5), digits, strict=True))
    return f"{digits[:6]}-{digits[6:]}{(11 - total % 11) % 10}"


def answers(count: int, share: float, seed: int = 15) -> tuple[list[str], list[list[str]]]:
    """``count`` answers of about 300 characters and, for each, the values planted in it."""
    rnd = random.Random(seed)
    texts, planted = [], []
    for i in range(count):
        korean = i % 2 == 0
        parts: list[str] = []
        while sum(len(p) + 1 for p in parts) < 300:
            parts.append(rnd.choice(KO if korean else EN))
        values = []
        if rnd.random() < share:
            slot = rnd.randrange(4)
            value = pii_value(rnd, korean, slot)
            parts.insert(rnd.randint(0, len(parts)), (PII_KO if korean else PII_EN)[slot].format(v=value))
            values.append(value)
        texts.append(" ".join(parts))
        planted.append(values)
    return texts, planted


def pii_value(rnd: random.Random, korean: bool, slot: int) -> str:
    a, b = rnd.randint(1000, 9999), rnd.randint(1000, 9999)
    if korean:
        return [f"010-{a}-{b}", rrn(rnd), f"서울특별시 강남구 테헤란로 {a % 500 + 1}", f"user{a}@example.co.kr"][slot]
    key = "".join(rnd.choice("ABCDEFabcdef0123456789") for _ in range(40))
    return [rnd.choice(CARDS), f"+44 20 7946 {a}", f"jane{a}@example.com", f"sk-proj-{key}"][slot]


def confusion(min_level: float) -> dict[str, Counter]:
    counts: dict[str, Counter] = {t: Counter() for t in TYPES}
    for _, _, entry in load_fixtures():
        text = entry["text"]
        want = {s[:3] for s in spans(text, truth(entry)) if s[3] >= min_level}
        got = {(f.start, f.end, f.type) for f in find(text, min_confidence=min_level)}
        for start, end, kind in got | want:
            key = "tp" if (start, end, kind) in got & want else "fp" if (start, end, kind) in got else "fn"
            counts[kind][key] += 1
    return counts


def print_confusion(title: str, counts: dict[str, Counter]) -> None:
    print(title)
    print(f"  {'type':16s} {'tp':>4s} {'fp':>4s} {'fn':>4s} {'precision':>10s} {'recall':>8s}")
    total: Counter = Counter()
    for kind, c in counts.items():
        total += c
        print(f"  {kind:16s} {c['tp']:4d} {c['fp']:4d} {c['fn']:4d} "
              f"{ratio(c['tp'], c['fp']):>10s} {ratio(c['tp'], c['fn']):>8s}")
    print(f"  {'all':16s} {total['tp']:4d} {total['fp']:4d} {total['fn']:4d} "
          f"{ratio(total['tp'], total['fp']):>10s} {ratio(total['tp'], total['fn']):>8s}")


def ratio(tp: int, other: int) -> str:
    return f"{tp / (tp + other):.3f}" if tp + other else "-"


def time_masking(texts: list[str], repeat: int) -> tuple[list[float], list[str]]:
    rounds, masked = [], []
    for _ in range(repeat):
        started = time.perf_counter()
        masked = [Masker().mask(t) for t in texts]
        rounds.append(time.perf_counter() - started)
    return rounds, masked


def check_masking(texts: list[str], planted: list[list[str]], masked: list[str]) -> tuple[int, int, int]:
    """(answers whose every planted value was masked, answers with PII, clean answers changed)."""
    hit = sum(1 for t, p, m in zip(texts, planted, masked, strict=True) if p and all(v not in m for v in p))
    with_pii = sum(1 for p in planted if p)
    changed_clean = sum(1 for t, p, m in zip(texts, planted, masked, strict=True) if not p and m != t)
    return hit, with_pii, changed_clean


def time_find(text: str, repeat: int) -> list[float]:
    rounds = []
    for i in range(repeat):
        fresh = f"{i} {text}"  # a new string each round: the rules memoise their scan of one text
        started = time.perf_counter()
        find(fresh)
        rounds.append(time.perf_counter() - started)
    return rounds


def time_document(texts: list[str], repeat: int) -> tuple[list[float], list[float]]:
    """Rounds of masking a results document of one case per answer, and of serialising it."""
    import json

    from pytest_promstack.config.settings import Settings
    from pytest_promstack.results.masking import masked
    from pytest_promstack.results.records import blank

    cases = [blank(case_id=f"row-{i}", vars={"input": t}, output=f"네, {t}",
                   messages=[{"role": "system", "content": "상담원입니다."}, {"role": "user", "content": t}],
                   assertions=[{"type": "contains", "passed": False, "score": 0.0,
                                "reason": f"contains: 'zz' in {t[:80]!r}"}])
             for i, t in enumerate(texts)]
    doc, masking = {"cases": cases, "selection": []}, Settings(root=Path("."), source="", models={}, suites={}).masking
    mask_rounds, dump_rounds = [], []
    for _ in range(repeat):
        started = time.perf_counter()
        masked(doc, masking)
        mask_rounds.append(time.perf_counter() - started)
        started = time.perf_counter()
        json.dumps(doc, ensure_ascii=False)
        dump_rounds.append(time.perf_counter() - started)
    return mask_rounds, dump_rounds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--answers", type=int, default=1000)
    parser.add_argument("--share", type=float, default=0.3, help="share of answers carrying PII or a key")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print_confusion("fixtures, every finding (exact type and span):", confusion(min(LEVELS.values())))
    print_confusion("fixtures, MEDIUM and above (masking's default):", confusion(MEDIUM))
    texts, planted = answers(args.answers, args.share)
    find(texts[0])  # load the rule modules and phonenumbers outside the timing
    rounds, masked = time_masking(texts, args.repeat)
    med = statistics.median(rounds)
    hit, with_pii, changed_clean = check_masking(texts, planted, masked)
    mean_len = statistics.mean(len(t) for t in texts)
    print(f"Masker().mask() on {len(texts)} answers (mean {mean_len:.0f} chars, {with_pii} with PII), "
          f"a new Masker each: median {med * 1000:.1f} ms per {len(texts)} "
          f"({med / len(texts) * 1e6:.0f} µs per answer); rounds: {', '.join(f'{r * 1000:.1f}' for r in rounds)} ms")
    print(f"  answers with PII masked at every planted value: {hit}/{with_pii}; clean answers changed: "
          f"{changed_clean}/{len(texts) - with_pii}")
    mask_rounds, dump_rounds = time_document(texts, args.repeat)
    print(f"a results document of {len(texts)} cases masked (results JSON, HTML): median "
          f"{statistics.median(mask_rounds) * 1000:.0f} ms; json.dumps of it unmasked: median "
          f"{statistics.median(dump_rounds) * 1000:.0f} ms; ratio "
          f"{statistics.median(mask_rounds) / statistics.median(dump_rounds):.1f}")
    plain = " ".join(texts)
    big = (plain * (1_000_000 // len(plain) + 1))[:1_000_000]
    rounds = time_find(big, args.repeat)
    print(f"find() on 1 MB of these answers: median {statistics.median(rounds):.3f} s; "
          f"rounds: {', '.join(f'{r:.3f}' for r in rounds)} s")
    dense, _ = answers(3000, 1.0, seed=16)
    dense_text = (" ".join(dense) * 2)[:1_000_000]
    rounds = time_find(dense_text, args.repeat)
    print(f"find() on 1 MB with PII in every answer ({len(find(dense_text))} findings): median "
          f"{statistics.median(rounds):.3f} s; rounds: {', '.join(f'{r:.3f}' for r in rounds)} s")


if __name__ == "__main__":
    main()
