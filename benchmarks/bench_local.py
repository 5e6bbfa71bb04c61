"""Issue 18's local-model figures: the bundled Gemma 3 270M's throughput at the example
project's settings (temperature 0, max_tokens 48, Korean support questions), calls per second
and output tokens per second, for the layouts llama.cpp allows on this machine, side by side:

- one model with 2 threads, calls one at a time (what ``local/gemma-3-270m`` does today);
- one model with 1 thread;
- two models with 1 thread each, serving two calls at once (llama.cpp releases the GIL while
  it evaluates), which a pool in the provider would do.

Also whether each layout gives the same answers as the first (a cassette recorded on one must
replay on the other). Medians of R rounds. Needs the ``local`` extra.

    python benchmarks/bench_local.py --calls 12 --repeat 3
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

QUESTIONS = ["배송은 언제 오나요?", "환불하고 싶어요", "교환은 어떻게 하나요?", "영업시간이 언제인가요?",
             "비밀번호를 잊어버렸어요", "쿠폰이 적용되지 않아요"]
SYSTEM = "당신은 쇼핑몰 고객 지원 상담원입니다. 정중하게 한국어로 짧게 답하세요."


def prompt(i: int) -> str:
    return f"System: {SYSTEM}\nUser: {QUESTIONS[i % len(QUESTIONS)]} (주문 {i})\nAssistant:"


def load(threads: int) -> Any:
    from llama_cpp import Llama

    from pytest_promstack.execute.providers.local import _model_path

    llm = Llama(model_path=str(_model_path("gemma-3-270m")), n_ctx=2048, n_threads=threads, verbose=False, seed=0)
    llm(prompt(-1), max_tokens=4, temperature=0)  # warm
    return llm


def answer(llm: Any, i: int) -> tuple[str, int]:
    out = llm(prompt(i), max_tokens=48, temperature=0, stop=["\nUser:", "\nSystem:"])
    return out["choices"][0]["text"], out["usage"]["completion_tokens"]


def serial(llm: Any, calls: int) -> tuple[float, dict[int, tuple[str, int]]]:
    start = time.perf_counter()
    answers = {i: answer(llm, i) for i in range(calls)}
    return time.perf_counter() - start, answers


def pooled(llms: list[Any], calls: int) -> tuple[float, dict[int, tuple[str, int]]]:
    answers: dict[int, tuple[str, int]] = {}

    def work(k: int) -> None:
        for i in range(k, calls, len(llms)):
            answers[i] = answer(llms[k], i)

    start = time.perf_counter()
    threads = [threading.Thread(target=work, args=(k,)) for k in range(len(llms))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start, answers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=12)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    layouts = {"one model, 2 threads, serial": lambda: serial(two_threads, args.calls),
               "one model, 1 thread, serial": lambda: serial(one_thread, args.calls),
               "two models x 1 thread, 2 at once": lambda: pooled(pair, args.calls)}
    two_threads, one_thread, pair = load(2), load(1), [load(1), load(1)]
    walls: dict[str, list[float]] = {name: [] for name in layouts}
    answers: dict[str, dict[int, tuple[str, int]]] = {}
    for _ in range(args.repeat):
        for name, run in layouts.items():
            wall, got = run()
            walls[name].append(wall)
            answers.setdefault(name, got)
    reference = answers["one model, 2 threads, serial"]
    print(f"{args.calls} calls, max_tokens 48, temperature 0; medians of {args.repeat}")
    for name, runs in walls.items():
        wall = statistics.median(runs)
        tokens = sum(n for _, n in answers[name].values())
        same = sum(answers[name][i][0] == reference[i][0] for i in range(args.calls))
        print(f"  {name:34s} {wall:6.2f} s  {args.calls / wall:5.2f} calls/s  {tokens / wall:6.1f} tokens/s  "
              f"same answers as the first: {same}/{args.calls}")


if __name__ == "__main__":
    main()
