"""Operators' commands given bad input, or no service to talk to: a clear message and a non-zero exit,
never a traceback; and `exchange deadletters --limit` listing exactly as many as asked."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from exchange import logs
from exchange.cli import connect as connect_cli
from exchange.cli import main

VALID_ID = "440103198403037020"


@pytest.fixture(autouse=True)
def _nothing_listening(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings whose Kafka and PostgreSQL ports nothing listens on."""
    for name in [name for name in os.environ if name.startswith("EXCHANGE_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("EXCHANGE_STACK__KAFKA_PORT", "1")
    monkeypatch.setenv("EXCHANGE_STACK__POSTGRES_PORT", "2")


def _letter(n: int) -> dict[str, Any]:
    return {
        "department": "tax",
        "reason": "bad_amount",
        "source": "tax.csv",
        "position": f"line {n}",
        "field": "实缴税额",
        "message": f"letter number {n}",
        "rejected_at": n,
    }


@pytest.mark.parametrize(("limit", "listed"), [("0", []), ("2", [3, 4]), ("9", [0, 1, 2, 3, 4])])
def test_deadletters_lists_as_many_of_the_latest_as_asked(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], limit: str, listed: list[int]
) -> None:
    # `letters[-0:]` is every letter: --limit 0 listed them all.
    letters = [_letter(n) for n in range(5)]
    monkeypatch.setattr(connect_cli, "read_deadletters", lambda settings, department=None: letters)
    assert main(["deadletters", "--limit", limit]) == 0
    out = capsys.readouterr().out
    assert [n for n in range(5) if f"letter number {n}" in out] == listed
    assert "5 dead letters" in out


def test_deadletters_refuses_a_negative_limit(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["deadletters", "--limit", "-5"])  # listed all but the oldest five
    assert exited.value.code == 2
    assert "-5 is negative" in capsys.readouterr().err


def test_deadletters_without_kafka_says_how_to_start_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(logs, "BOOTSTRAP_TIMEOUT_MS", 500)  # no need to wait the operator's 10 s here
    assert main(["deadletters"]) == 1
    err = capsys.readouterr().err
    assert "cannot reach Kafka at 127.0.0.1:1" in err and "exchange stack up" in err


def test_an_invalid_id_is_refused_naming_the_option_it_was_given_as(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = ["consent", "grant", "--subject", VALID_ID, "--caller", "talent-office"]
    assert main([*args, "--purpose", "talent-green-card", "--delegate", "12"]) == 1
    assert "--delegate: " in capsys.readouterr().err


def test_a_future_as_of_is_refused_naming_the_option(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["facts", VALID_ID, "--as-of", "2999-01-01T00:00:00"]) == 1
    err = capsys.readouterr().err
    assert "leave --as-of out" in err and "as_of out" not in err.replace("--as-of out", "")


def test_synth_into_a_folder_that_cannot_be_made_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert main(["synth", "--people", "1", "--out", str(blocker / "exports")]) == 1
    assert "cannot write the exports to" in capsys.readouterr().err


def test_synth_names_a_bad_option_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["synth", "--people", "0", "--out", str(tmp_path)]) == 1
    assert capsys.readouterr().err.startswith("exchange synth: --people must be at least 1")
