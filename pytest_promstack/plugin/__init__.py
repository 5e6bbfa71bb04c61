"""The plugin's entry point: options, hook specs, the built-in assertions and judges, and
the run's controller (session.py), created and registered at configure with ``--promstack``
only. Without it no file is collected and nothing heavy is imported."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .options import add_options, settings_options
from .stash import SESSION_KEY


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from ..score import hookspecs as hooks

    pluginmanager.add_hookspecs(hooks)


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser.getgroup("promstack", "prompt regression tests (pytest-promstack)").addoption)


@pytest.hookimpl(trylast=True)
def pytest_promstack_register_assertions(register: Callable[[str, Callable[..., Any]], None]) -> None:
    from ..score.assertions import register_builtins

    register_builtins(register)


@pytest.hookimpl(trylast=True)
def pytest_promstack_register_judges(register: Callable[[str, Any], None], settings: Any) -> None:
    for name, judge in (getattr(settings, "judges", None) or {}).items():
        register(name, judge)


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> None:
    """``--promstack-estimate`` calls nothing and runs no item: it reads every planned case in
    this one process, so xdist stays off (its controller collects nothing to estimate)."""
    option = config.option
    if getattr(option, "promstack", False) and getattr(option, "promstack_estimate", False) \
            and getattr(option, "numprocesses", None):
        option.numprocesses, option.dist, option.tx = 0, "no", []


def pytest_configure(config: pytest.Config) -> None:
    if not config.option.promstack:
        return
    from ..config.settings import load_settings
    from ..model.errors import ConfigError
    from ..score.registry import build_registry, with_judges
    from .session import PromstackSession
    from .xdist import worker_count

    try:
        root = _root(config)
        settings = load_settings(root, settings_options(config.option, config.invocation_params.dir,
                                                         workers=worker_count(config)))
        registry = build_registry(config.hook, settings)
        ps = PromstackSession(config, with_judges(settings, registry), registry)
    except ConfigError as exc:
        raise pytest.UsageError(f"promstack: invalid configuration\n{exc}") from None
    config.stash[SESSION_KEY] = ps
    ps.start()
    config.pluginmanager.register(ps, "promstack-session")  # its methods are the run's hooks
    ps.restore_sigterm = _interrupts(config, ps)
    if config.pluginmanager.hasplugin("xdist"):
        from .xdist import XdistHooks

        config.pluginmanager.register(XdistHooks(), "promstack-xdist")
    if os.environ.get("PROMSTACK_PROGRESS_FILE"):  # a process that started this run shows its progress
        from .progress import register

        register(config, os.environ["PROMSTACK_PROGRESS_FILE"])


def _interrupts(config: pytest.Config, ps: Any) -> Any:
    """SIGTERM (CI cancelling a job) ends the run like Ctrl-C: pytest then finishes the session,
    so what completed is kept and nothing half-done is cached. Returns the old handlers.

    Under xdist the controller does not stop at once: it passes SIGTERM on to the workers and
    goes on receiving their reports; each worker stops calling, scores what finished and sends
    it along as it ends; then the controller ends as interrupted, with every finished case. A
    second signal stops the controller at once. A worker acts on the first signal only (a
    terminal's Ctrl-C reaches it, and the controller's SIGTERM after it)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return None
    # xdist turns -n N into --dist load before plugins configure; its controller registers later
    controller = not ps.is_worker and getattr(config.option, "dist", "no") != "no"
    got: list[int] = []

    def interrupt(signum: int, frame: Any) -> None:
        got.append(signum)
        if controller and len(got) == 1:
            _pass_on(ps.worker_pids)
            return
        if ps.is_worker and len(got) > 1:
            return
        raise KeyboardInterrupt(f"signal {signum}")

    old = {signal.SIGTERM: signal.signal(signal.SIGTERM, interrupt)}
    if controller or ps.is_worker:
        old[signal.SIGINT] = signal.signal(signal.SIGINT, interrupt)
    return old


def _pass_on(pids: list[int]) -> None:
    import contextlib
    import os
    import signal

    for pid in pids:
        with contextlib.suppress(OSError):  # that worker has ended already
            os.kill(pid, signal.SIGTERM)


def _root(config: pytest.Config) -> Path:
    from ..config.settings import find_config

    for candidate in (config.rootpath, config.invocation_params.dir):
        if config.option.promstack_config or find_config(candidate, None) is not None:
            return candidate
    return config.rootpath


def pytest_unconfigure(config: pytest.Config) -> None:
    ps = config.stash.get(SESSION_KEY, None)
    if ps is not None:
        del config.stash[SESSION_KEY]
        config.pluginmanager.unregister(ps)
        ps.close()
        if ps.restore_sigterm is not None:
            import signal

            for signum, handler in ps.restore_sigterm.items():
                signal.signal(signum, handler)
