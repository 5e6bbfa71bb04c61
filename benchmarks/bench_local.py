"""Issue 18's local-model figures: the bundled Gemma 3 270M's throughput at the example
project's settings (temperature 0, max_tokens 48, Korean support questions), calls per second
and output tokens per second, for the layouts llama.cpp allows on this machine, side by side:

- one model with 2 threads, calls one at a time (what ``local/gemma-3-270m`` does today);
- one model with 1 thread;
- two models with 1 thread each, serving two calls at once (llama.cpp releases the GIL while
  it evaluates);
- the provider itself, as a run calls it (``litellm.acompletion(model="local/gemma-3-270m")``,
  the calls all at once under the example's concurrency 4): with one instance
  (``PROMSTACK_LOCAL_INSTANCES=1``: one model with 2 threads, the provider before its pool)
  and with its pool (the default: one 1-thread instance per core).

Also whether each layout gives the same answers as the first (a cassette recorded on one must
replay on the other). Medians of R rounds, the layouts alternated within each round.
``--example`` instead times ``pytest --promstack --promstack-cache off`` on example_project
(every answer asked of the model: 77 local calls, the judge's included), one instance vs the
pool, alternated, with each run's peak RSS. ``--memory`` prints the process's memory with the
pool's first and second instance loaded, and after ``close`` (Linux). Needs the ``local`` extra.

    python benchmarks/bench_local.py --calls 12 --repeat 3
    python benchmarks/bench_local.py --example --repeat 3
    python benchmarks/bench_local.py --memory
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MODEL = "gemma-3-270m"
ENV = "PROMSTACK_LOCAL_INSTANCES"
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


def provider(instances: str | None) -> Any:
    """A handler of the provider whose pool was made under ``PROMSTACK_LOCAL_INSTANCES=instances``
    (None: unset), warmed with one call."""
    from pytest_promstack.execute.providers.local import LocalModel

    saved = os.environ.pop(ENV, None)
    if instances is not None:
        os.environ[ENV] = instances
    try:
        handler = LocalModel()
        handler._pool(MODEL)  # the pool reads the setting when it is made
    finally:
        os.environ.pop(ENV, None)
        if saved is not None:
            os.environ[ENV] = saved
    handler._generate(MODEL, messages(-1), {"max_tokens": 4, "temperature": 0})
    return handler


def messages(i: int) -> list[dict[str, str]]:
    """The provider lays these out as ``prompt(i)``: its answers compare with the layouts'."""
    question = f"{QUESTIONS[i % len(QUESTIONS)]} (주문 {i})"
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}]


Answers = dict[int, tuple[str, int]]


def through_litellm(litellm: Any, handler: Any, calls: int, concurrency: int = 4) -> tuple[float, Answers]:
    """``calls`` calls to ``local/gemma-3-270m`` at once, at most ``concurrency`` in flight (the
    engine's semaphore), through litellm's custom-provider path to ``handler``."""
    litellm.custom_provider_map = [{"provider": "local", "custom_handler": handler}]

    async def run() -> Answers:
        sem = asyncio.Semaphore(concurrency)

        async def one(i: int) -> tuple[str, int]:
            async with sem:
                resp = await litellm.acompletion(model=f"local/{MODEL}", messages=messages(i), temperature=0,
                                                 max_tokens=48)
            return resp.choices[0].message.content, resp.usage.completion_tokens

        return dict(enumerate(await asyncio.gather(*(one(i) for i in range(calls)))))

    start = time.perf_counter()
    answers = asyncio.run(run())
    return time.perf_counter() - start, answers


def example(repeat: int) -> None:
    """example_project cold (``--promstack-cache off``), one instance vs the pool, alternated."""
    variants = {"one instance (PROMSTACK_LOCAL_INSTANCES=1)": "1", "the pool (default)": None}
    walls: dict[str, list[float]] = {name: [] for name in variants}
    peaks: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(repeat):
        for name, instances in variants.items():
            env = {k: v for k, v in os.environ.items() if k != ENV}
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
            if instances is not None:
                env[ENV] = instances
            start = time.perf_counter()
            with tempfile.TemporaryFile() as out:
                proc = subprocess.Popen([sys.executable, "-m", "pytest", "--promstack", "--promstack-cache", "off",
                                         "-q", "-p", "no:cacheprovider"], cwd=ROOT / "example_project", env=env,
                                        stdout=out, stderr=subprocess.STDOUT)
                _, status, usage = os.wait4(proc.pid, 0)  # this child's own peak RSS
                proc.returncode = os.waitstatus_to_exitcode(status)
                walls[name].append(time.perf_counter() - start)
                peaks[name].append(usage.ru_maxrss / 1024)
                if proc.returncode != 0:
                    out.seek(0)
                    sys.exit(f"{name}: pytest exited {proc.returncode}\n{out.read()[-2000:].decode()}")
    print(f"example_project, pytest --promstack --promstack-cache off; medians of {repeat}")
    base = statistics.median(next(iter(walls.values())))
    for name, runs in walls.items():
        wall = statistics.median(runs)
        print(f"  {name:44s} {wall:6.2f} s  ({base / wall:.2f}x)  peak RSS {statistics.median(peaks[name]):5.0f} MiB  "
              f"runs: {', '.join(f'{r:.1f}' for r in runs)}")


def memory() -> None:
    """RSS and PSS (the shared GGUF pages counted once) with the pool's 1st and 2nd instance."""
    def line(what: str) -> None:
        fields = dict(row.split(":", 1) for row in Path("/proc/self/smaps_rollup").read_text().splitlines()[1:])
        mib = {k: int(fields[k].split()[0]) / 1024 for k in ("Rss", "Pss", "Anonymous")}
        print(f"  {what:26s} RSS {mib['Rss']:5.0f} MiB  PSS {mib['Pss']:5.0f} MiB  "
              f"anonymous {mib['Anonymous']:5.0f} MiB")

    from pytest_promstack.execute.litellm_import import import_litellm

    import_litellm()
    handler = provider(None)
    pool = handler._pools[MODEL]
    line("pool, 1 instance")
    with pool.instance() as first, pool.instance() as second:  # the second taken while the first is busy
        for llm, i in ((first, 1), (second, 2)):
            answer(llm, i)
    line(f"pool, {len(pool.instances)} instances")
    handler.close()
    line("after close")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=12)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--example", action="store_true", help="time example_project's cold run instead")
    parser.add_argument("--memory", action="store_true", help="the provider's memory with 1 and 2 instances")
    args = parser.parse_args()
    if args.example:
        return example(args.repeat)
    if args.memory:
        return memory()
    from pytest_promstack.execute.litellm_import import import_litellm

    litellm = import_litellm()
    layouts = {"one model, 2 threads, serial": lambda: serial(two_threads, args.calls),
               "one model, 1 thread, serial": lambda: serial(one_thread, args.calls),
               "two models x 1 thread, 2 at once": lambda: pooled(pair, args.calls),
               "provider, one instance (ENV=1)": lambda: through_litellm(litellm, single, args.calls),
               "provider, pool (default)": lambda: through_litellm(litellm, pool, args.calls)}
    two_threads, one_thread, pair = load(2), load(1), [load(1), load(1)]
    single, pool = provider("1"), provider(None)
    walls: dict[str, list[float]] = {name: [] for name in layouts}
    answers: dict[str, dict[int, tuple[str, int]]] = {}
    for _ in range(args.repeat):
        for name, run in layouts.items():
            wall, got = run()
            walls[name].append(wall)
            answers.setdefault(name, got)
    print(f"{args.calls} calls, max_tokens 48, temperature 0; medians of {args.repeat}")
    for name, runs in walls.items():
        # the layouts keep llama.cpp's prompt cache between calls, the provider resets it per call:
        # each is compared with the first of its kind
        reference = answers["provider, one instance (ENV=1)" if name.startswith("provider") else next(iter(answers))]
        wall = statistics.median(runs)
        tokens = sum(n for _, n in answers[name].values())
        same = sum(answers[name][i] == reference[i] for i in range(args.calls))
        print(f"  {name:34s} {wall:6.2f} s  {args.calls / wall:5.2f} calls/s  {tokens / wall:6.1f} tokens/s  "
              f"same answers and token counts as the first: {same}/{args.calls}")
    print(f"  provider, pool: most calls served at once {pool._pools[MODEL].peak}, instances "
          f"{len(pool._pools[MODEL].instances)}")
    for llm in (two_threads, one_thread, *pair, single, pool):
        llm.close()  # before the interpreter's exit, when llama.cpp's handles are gone


if __name__ == "__main__":
    main()
