"""`promstack audit verify` and the lines the registry commands and the SDK add to the audit
log: label moves, deploys and rollbacks one line each, an SDK call one line with its texts
masked, and the chain they make verifies (and names a tampered line)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_promstack import Client
from pytest_promstack.cli import main
from pytest_promstack.safety.audit import AuditLog
from tests.support.project import KEY_ENV, config, one_error_line, write
from tests.support.run import run_promstack

V1 = "id: support\ntemplate: '하나 {{ input }}'\n"
V2 = "id: support\ntemplate: '둘 {{ input }}'\n"
EMAIL = "kim.minji@example.co.kr"
KEY = "sk-proj-" + "Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2" * 2
AUDIT = {"enabled": True, "path": "logs/audit.jsonl"}


@pytest.fixture
def project(tmp_path, server, monkeypatch) -> Path:
    monkeypatch.setenv(KEY_ENV, "k")
    monkeypatch.setenv("PROMSTACK_USER", "민지")
    monkeypatch.delenv("CI", raising=False)
    (tmp_path / ".git").mkdir()
    write(tmp_path, {"promstack.yaml": config(server.url, suites={"s": {"prompt": "prompts/support.yaml",
                                                                       "tests": ["t.csv"]}}, audit=AUDIT),
                     "prompts/support.yaml": V1, "t.csv": "input\nx\n"})
    monkeypatch.chdir(tmp_path)
    return tmp_path


def audit_lines(root: Path) -> list[dict]:
    return [json.loads(x) for x in (root / "logs/audit.jsonl").read_text(encoding="utf-8").splitlines()]


def test_label_deploy_and_rollback_each_write_one_line_that_verifies(project, capsys):
    assert main(["prompt", "list"]) == 0  # records v1
    (project / "prompts/support.yaml").write_text(V2, encoding="utf-8")
    assert main(["prompt", "list"]) == 0  # records v2
    assert main(["prompt", "label", "support", "staging", "--version", "1"]) == 0
    assert main(["deploy", "--prompt", "support", "--version", "2", "--force", "--reason", f"hotfix for {EMAIL}"]) == 0
    assert main(["prompt", "rollback", "support", "--to", "1"]) == 0
    rows = audit_lines(project)
    assert [r["event"] for r in rows] == ["label", "deploy", "rollback"]
    label, deploy, rollback = rows
    assert (label["label"], label["from"], label["to"], label["forced"]) == ("staging", None, 1, False)
    assert (deploy["label"], deploy["to"], deploy["forced"]) == ("production", 2, True)
    assert deploy["reason"] == "hotfix for <EMAIL_1>"
    assert (rollback["to"], rollback["file"], rollback["file_version"]) == (1, "prompts/support.yaml", 1)
    assert {r["user"] for r in rows} == {"민지"}
    assert {r["prompt_id"] for r in rows} == {"support"}
    assert label["prompt_version"] != deploy["prompt_version"]  # the content hash of v1, then of v2
    index = json.loads((project / ".promstack/prompts/index.json").read_text(encoding="utf-8"))
    assert len(index["prompts"]["support"]["audit"]) == 2  # the registry keeps its own list of label moves
    assert index["prompts"]["support"]["audit"][1]["reason"] == "hotfix for <EMAIL_1>"  # the registry is committed
    assert EMAIL not in capsys.readouterr().out
    assert main(["audit", "verify"]) == 0  # audit.path from promstack.yaml
    assert capsys.readouterr().out.startswith("audit: 3 lines in 1 file, chain intact; last hash ")


def test_verify_names_an_edited_line_and_fails(project, capsys):
    log = AuditLog(project / "logs/audit.jsonl", run_id="r", user="u")
    for i in range(3):
        log.write("call", question=f"질문 {i}", answer="답")
    rows = audit_lines(project)
    rows[1]["answer"] = "바뀐 답"
    (project / "logs/audit.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                                              encoding="utf-8")
    assert main(["audit", "verify", "--path", "logs/audit.jsonl"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out == ["audit: audit.jsonl:2: edited: its hash does not match its content (seq 2)",
                   "audit: 3 lines in 1 file, chain BROKEN (1 problems)"]


def test_verify_without_a_log_or_with_a_bad_head_is_one_line(project, capsys):
    assert main(["audit", "verify"]) == 4
    assert one_error_line(capsys) == (f"promstack audit: no audit log at {project / 'logs/audit.jsonl'}: pass --path "
                                      "PATH, or turn it on with audit: {enabled: true} in promstack.yaml")
    AuditLog(project / "logs/audit.jsonl", run_id="r", user="u").write("label")
    assert main(["audit", "verify", "--head", "xyz"]) == 4
    assert one_error_line(capsys) == ("promstack audit: --head xyz: give a hash of at least 12 hex digits, as verify "
                                      "printed it")


def test_the_installed_command_verifies_across_rotated_files(tmp_path):
    from pytest_promstack.safety.audit import Rotation

    log = AuditLog(tmp_path / "audit.jsonl", run_id="r", user="u", rotate=Rotation(max_bytes=1024))
    for i in range(10):
        log.write("call", question=f"질문 {i}", answer="답" * 40)
    done = run_promstack("audit", "verify", "--path", "audit.jsonl", cwd=tmp_path).check()
    files = len(list(tmp_path.glob("audit*.jsonl")))
    assert files >= 3
    assert done.stdout.startswith(f"audit: 10 lines in {files} files, chain intact")
    sorted(tmp_path.glob("audit.*.2.jsonl"))[0].unlink()
    broken = run_promstack("audit", "verify", "--path", "audit.jsonl", cwd=tmp_path)
    assert broken.returncode == 1
    assert "rotated file 2 of the chain is missing" in broken.stdout


def test_an_sdk_call_writes_one_masked_line_and_no_key(project, server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with Client(project, user_id="app-7") as client:
        reply = client.complete("support", input=f"{EMAIL} 로 환불 영수증, 키는 {KEY}", model="mine")
        client.complete("support", input="두 번째", model="mine")
    assert reply.text.startswith("echo: 하나 ")
    raw = (project / "logs/audit.jsonl").read_text(encoding="utf-8")
    assert EMAIL not in raw
    assert KEY not in raw
    first, second = audit_lines(project)
    assert (first["event"], first["user"], first["model"], first["prompt_id"]) == ("call", "app-7", "openai/mine",
                                                                                  "support")
    assert first["question"] == "하나 <EMAIL_1> 로 환불 영수증, 키는 <OPENAI_KEY_1>"
    assert first["answer"] == "echo: " + first["question"]  # the same values, the same placeholders
    assert (first["input_tokens"], first["cached"], first["guards"]) == (reply.input_tokens, False, [])
    assert second["prev"] == first["hash"]
    assert second["run_id"] == first["run_id"]


def test_audit_off_writes_nothing(tmp_path, server, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "k")
    write(tmp_path, {"promstack.yaml": config(server.url, suites={"s": {"prompt": "prompts/support.yaml",
                                                                       "tests": ["t.csv"]}}),
                     "prompts/support.yaml": V1, "t.csv": "input\nx\n"})
    with Client(tmp_path) as client:
        client.complete("support", input="x", model="mine")
    assert not list(tmp_path.rglob("audit*.jsonl"))
