"""Settings are decided once, complete and frozen, before anything runs."""

from __future__ import annotations

import dataclasses

import pytest

from pytest_promstack.config.modes import CacheMode
from pytest_promstack.config.settings import RunOptions, load_settings

CONFIG = "models: [openai/x]\nconcurrency: 9\ncache: {mode: replay}\nsuites: {s: {tests: ['t/*.csv']}}\n"


@pytest.fixture
def root(tmp_path):
    (tmp_path / "promstack.yaml").write_text(CONFIG, encoding="utf-8")
    (tmp_path / "t").mkdir()
    (tmp_path / "t/a.csv").write_text("input\nx\n", encoding="utf-8")
    return tmp_path


def test_each_xdist_worker_gets_its_share_of_the_concurrency_when_the_settings_are_made(root):
    assert load_settings(root, {}).concurrency == 9
    assert load_settings(root, {"workers": 2}).concurrency == 4
    assert load_settings(root, {"workers": 16, "concurrency": 3}).concurrency == 1  # never 0


def test_the_cache_mode_is_a_type_with_what_it_means(root):
    settings = load_settings(root, {})
    assert settings.cache_mode is CacheMode.REPLAY
    assert settings.cache_mode.reads
    assert not settings.cache_mode.writes
    assert load_settings(root, {"cache": "record"}).cache_mode is CacheMode.RECORD
    assert [m for m in CacheMode if m.writes] == [CacheMode.USE, CacheMode.REFRESH, CacheMode.RECORD]


def test_settings_and_the_run_options_cannot_be_changed_once_made(root):
    settings = load_settings(root, {"run": RunOptions(json=("r.json",), baseline="b.json")})
    assert settings.run.json == ("r.json",)
    assert settings.run.baseline == "b.json"
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.concurrency = 1  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.run.report = "r.html"  # type: ignore[misc]


def test_an_arena_without_a_judge_names_the_judges_to_choose_from(tmp_path):
    from pytest_promstack.model.errors import ConfigError

    (tmp_path / "promstack.yaml").write_text(
        "models: [openai/a, openai/b]\njudges: {pref: {model: openai/a, criteria: ['좋은가?']}, tone: {model: openai/b, criteria: ['친절한가?']}}\n"
        "arena: {models: [openai/a, openai/b], tests: ['t/*.csv']}\n", encoding="utf-8")
    (tmp_path / "t").mkdir()
    (tmp_path / "t/a.csv").write_text("input\nx\n", encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_settings(tmp_path, {})
    assert ("arena.judge: the arena needs a judge and none is set; name one of judges: (pref, tone) as arena.judge, "
            "or set default_judge") in str(raised.value)
    assert "None" not in str(raised.value)


def test_a_real_key_in_the_wrong_place_says_where_it_belongs_in_one_line(tmp_path):
    from pytest_promstack.model.errors import ConfigError

    (tmp_path / "promstack.yaml").write_text(
        "models: [{name: b, model: openai/b, transport: direct, modle: x}]\nsuites: {}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_settings(tmp_path, {})
    lines = str(raised.value).splitlines()
    assert "promstack.yaml: models.0.transport: not a key here; transport is written at the top level " \
           "(see docs/configuration.md)" in lines
    assert any(line.startswith("promstack.yaml: models.0.modle: unknown key (did you mean 'model'?)") for line in lines)
    assert not any("valid string" in line for line in lines)  # not also told to write the entry as a string
