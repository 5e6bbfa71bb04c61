"""Conversations replayed from the cache beside one-shot cases making as many requests.

Two projects on the loopback server (latency L): C conversations of T turns (``turns:``, each
turn with its own check, the case with one over the transcript) and C x T one-shot cases. Each
is run once to fill its cache (cold: a conversation's turns wait for each other, so it takes
about T rounds of L), then rerun R times from the cache, the two reruns alternating; the
figures are the medians, the ratio, and each turn's share of the conversations' rerun. The
reruns must make no request (checked on the server).

    python benchmarks/bench_conversations.py --conversations 50 --turns 10 --latency 0.05 --repeat 5
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import PYTEST, Server, report, run


def write(root: Path, url: str, cases: str) -> None:
    (root / "cases").mkdir(parents=True, exist_ok=True)
    (root / "cases/bench.yaml").write_text(cases, encoding="utf-8")
    (root / "prompt.yaml").write_text("id: chat\nmessages:\n  - {role: system, content: 상담원}\n"
                                      "  - {role: user, content: '{{ input }}'}\n", encoding="utf-8")
    (root / "promstack.yaml").write_text(json.dumps({
        "models": [{"name": "bench", "model": "openai/bench", "api_base": url, "api_key_env": "BENCH_KEY"}],
        "defaults": {"temperature": 0, "max_tokens": 64}, "concurrency": 32, "log": None,
        "suites": {"bench": {"prompt": "prompt.yaml", "tests": ["cases/*.yaml"]}},
    }), encoding="utf-8")
    (root / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")


def conversations(count: int, turns: int) -> str:
    out = []
    for c in range(count):
        out.append(f"- description: conversation {c}\n  turns:")
        out += [f"    - {{input: 'conversation {c} turn {t}', assert: ['contains:turn {t}']}}" for t in range(turns)]
        out.append("  assert: ['contains:User:']")
    return "\n".join(out) + "\n"


def one_shot(count: int) -> str:
    return "\n".join(f"- {{input: 'question {i}', __expected: 'contains:question {i}'}}" for i in range(count)) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=50)
    parser.add_argument("--turns", type=int, default=10)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    server = Server(args.latency)
    try:
        with tempfile.TemporaryDirectory(prefix="promstack-conv-") as tmp:
            chats, singles = Path(tmp, "conversations"), Path(tmp, "one-shot")
            n = args.conversations * args.turns
            write(chats, server.url, conversations(args.conversations, args.turns))
            write(singles, server.url, one_shot(n))
            cmd = [*PYTEST, "--promstack"]
            cold = {"conversations, cold": [run(cmd, chats)[0]], "one-shot, cold": [run(cmd, singles)[0]]}
            before = server.stats()["count"]
            warm: dict[str, list[float]] = {"conversations, from cache": [], "one-shot, from cache": []}
            for i in range(args.repeat):
                order = [("conversations, from cache", chats), ("one-shot, from cache", singles)]
                for name, folder in order if i % 2 == 0 else order[::-1]:
                    warm[name].append(run(cmd, folder)[0])
            assert server.stats()["count"] == before, "a rerun made a request"
            print(f"{args.conversations} conversations of {args.turns} turns vs {n} one-shot cases, "
                  f"latency {args.latency:g} s, {n} requests each")
            report("first run (fills the cache):", cold)
            med = report("rerun from the cache (no request):", warm)
            ratio = med["conversations, from cache"] / med["one-shot, from cache"]
            per_turn = med["conversations, from cache"] / n * 1000
            per_case = med["one-shot, from cache"] / n * 1000
            spread = statistics.pstdev(warm["conversations, from cache"])
            print(f"  ratio conversations / one-shot: x{ratio:.2f}; per turn {per_turn:.2f} ms, per one-shot case "
                  f"{per_case:.2f} ms (whole run, startup included); spread {spread:.2f} s")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
