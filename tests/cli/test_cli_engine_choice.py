"""``--engine`` and ``--catalog-db``: one definition for rollup, daily and validate, and the
combinations that cannot work refused with one line and exit 2 before anything runs
(docs/spark.md, "The daily job on Spark" and "Catalog tables")."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from expkit.cli import build_parser, main
from expkit.engines import EngineSpec, engine_spec
from expkit.errors import ExpkitError

COMMANDS = ("rollup", "daily", "validate")


def _option(command: str, flag: str) -> argparse.Action:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[command]
    return next(a for a in sub._actions if flag in a.option_strings)


@pytest.mark.parametrize("flag", ["--engine", "--catalog-db"])
def test_the_same_option_on_every_command_that_reads_raw_events(flag: str) -> None:
    actions = [_option(c, flag) for c in COMMANDS]
    assert len({(a.help, a.default, tuple(a.choices or ())) for a in actions}) == 1
    assert actions[0].default == ("duckdb" if flag == "--engine" else None)


@pytest.mark.parametrize("command", COMMANDS)
def test_catalog_db_without_spark_is_exit_2(command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Refused before the warehouse is even opened (it does not exist here) and before a JVM starts."""
    extra = ["--out", str(tmp_path / "reports")] if command == "daily" else []
    rc = main([command, "--warehouse", str(tmp_path / "missing"), "--date", "2026-11-14", "--catalog-db", "events",
               *extra])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert err == [f"expkit {command}: error: --catalog-db events reads catalog tables through Spark; "
                   "add --engine spark, or drop --catalog-db to read the warehouse's folders"]
    assert not (tmp_path / "reports").exists()


def test_engine_spec() -> None:
    assert engine_spec("duckdb") == EngineSpec() and EngineSpec().options() == {}
    assert EngineSpec("spark", "main.events").options() == {"catalog_db": "main.events"}
    spec = EngineSpec("spark")
    assert engine_spec(spec) is spec
    with pytest.raises(ExpkitError, match=r"unknown engine 'trino'; choose one of \['duckdb', 'spark'\]"):
        EngineSpec("trino")
