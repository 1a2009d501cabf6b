"""The command line's shared options: one definition and default for every command, checked
numbers, help that is fast and documents every option (docs/reports.md, "Command line")."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from expkit.cli import build_parser, main
from expkit.names import TILE_PARAMETERS, WINDOWS
from expkit.synth.incidents import INCIDENTS
from expkit.tiles.registry import TILES

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("duckdb", "pandas", "altair", "papermill", "pyarrow", "scipy", "statsmodels", "numpy")


def _parsers(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...],
                                                                                        argparse.ArgumentParser]]:
    """Every (sub)command's parser, with its command path."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, (*path, name))


COMMANDS = [path for path, _ in _parsers(build_parser())]


def test_help_of_every_command_loads_no_analysis_stack() -> None:
    """``expkit --help`` and ``expkit CMD --help`` import argparse-level modules only (measured
    times in docs/benchmarks.md)."""
    code = (
        "import contextlib, io, json, sys\n"
        "from expkit.cli import main\n"
        f"for argv in {[[*c, '--help'] for c in COMMANDS]!r}:\n"
        "    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "        main(argv)\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == []
    assert len(COMMANDS) >= 15  # expkit, synth, rollup, tile, daily, validate, ..., alerts eval, ...


def test_every_option_of_every_command_has_help_and_states_its_default() -> None:
    undocumented = []
    for path, parser in _parsers(build_parser()):
        formatter = parser._get_formatter()
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._VersionAction, argparse._SubParsersAction)):
                continue
            text = formatter._expand_help(action) if action.help else ""
            flag = isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction))
            if not text or not (action.required or flag or not action.option_strings or "default" in text):
                undocumented.append((" ".join(path), action.dest, text))
    assert undocumented == []


def _help(*command: str) -> str:
    parser = dict(_parsers(build_parser()))[command]
    return " ".join(parser.format_help().split())


def test_help_lists_tile_ids_parameter_keys_and_incidents_from_the_registries() -> None:
    tile_help, top = _help("tile"), _help()
    for tile_id in TILES:  # the registry's tiles, not a second list
        assert tile_id in tile_help and tile_id in top
    for key in TILE_PARAMETERS:
        assert f"{key} (" in tile_help
    assert all(w in tile_help for w in WINDOWS) and "default 24h" in tile_help
    for command in (("synth",), ("selftest",)):
        text = _help(*command)
        for name, info in INCIDENTS.items():
            assert f"{name} ({info.default_window})" in text, (command, name)
    assert "(default: 600.0)" in _help("daily") and "(default: 3600.0)" in _help("daily")
    assert "$EXPKIT_WAREHOUSE" in _help("daily") and "$EXPKIT_WAREHOUSE" in _help("demo")


@pytest.mark.parametrize(
    ("argv", "option", "value"),
    [
        (["tile", "ctr", "--date", "2026-11-14", "--timeout", "0"], "--timeout", "'0'"),
        (["tile", "ctr", "--date", "2026-11-14", "--timeout", "-5"], "--timeout", "'-5'"),
        (["tile", "ctr", "--date", "2026-11-14", "--timeout", "nan"], "--timeout", "'nan'"),
        (["daily", "--date", "2026-11-14", "--workers", "-1"], "--workers", "'-1'"),
        (["daily", "--date", "2026-11-14", "--workers", "0"], "--workers", "'0'"),
        (["daily", "--date", "2026-11-14", "--workers", "two"], "--workers", "'two'"),
        (["daily", "--date", "2026-11-14", "--lock-timeout", "-1"], "--lock-timeout", "'-1'"),
        (["daily", "--date", "2026-11-14", "--timeout", "inf"], "--timeout", "'inf'"),
        (["demo", "--users", "0"], "--users", "'0'"),
        (["demo", "--days", "-3"], "--days", "'-3'"),
        (["synth", "--out", "w", "--days", "1", "--end", "2026-11-14", "--seed", "-1"], "--seed", "'-1'"),
        (["monitor", "--every", "0"], "--every", "'0'"),
        (["monitor", "--iterations", "0"], "--iterations", "'0'"),
        (["selftest", "--users", "-10"], "--users", "'-10'"),
    ],
)
def test_numeric_options_are_checked_with_one_line_and_exit_2(
    argv: list[str], option: str, value: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"expkit {argv[0]}: error: argument {option}")
    assert value in lines[0] and "e.g." in lines[0]
    assert list(tmp_path.iterdir()) == []  # nothing written


@pytest.mark.parametrize("command", [
    ["daily", "--out", "r"], ["tile", "ctr", "--out", "r"], ["rollup"], ["validate"], ["alerts", "eval"],
])
def test_expkit_warehouse_is_the_default_warehouse_of_every_command(
    command: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    """``EXPKIT_WAREHOUSE=wh2 expkit daily ...`` works on wh2, not on ./warehouse."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "warehouse" / "events").mkdir(parents=True)  # a decoy ./warehouse
    wh2 = tmp_path / "wh2"
    monkeypatch.setenv("EXPKIT_WAREHOUSE", str(wh2))
    assert main([*command, "--date", "2026-11-14"]) == 2
    err = capsys.readouterr().err
    assert f"warehouse {wh2} has no events/ folder" in err, err


def test_demo_uses_expkit_warehouse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    not_a_folder = tmp_path / "wh2"
    not_a_folder.write_text("x")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EXPKIT_WAREHOUSE", str(not_a_folder))
    assert main(["demo", "--quiet", "--out", str(tmp_path / "r")]) == 2
    assert str(not_a_folder) in capsys.readouterr().err
    assert not (tmp_path / "warehouse").exists() and not (tmp_path / "r").exists()


@pytest.mark.parametrize("command", ["daily", "demo", "live"])
def test_missing_alert_rules_fail_before_anything_runs(
    command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    """No alerts.yaml beside --params: one line naming it and --rules, exit 2, nothing written;
    ``--rules`` names another file, which is then the one checked."""
    params = tmp_path / "p" / "experiment.yaml"
    params.parent.mkdir()
    shutil.copy(REPO / "params" / "experiment.yaml", params)
    monkeypatch.chdir(tmp_path)
    base = [command, "--params", str(params), "--out", str(tmp_path / "r"), "--warehouse", str(tmp_path / "wh")]
    if command == "daily":
        base += ["--date", "2026-11-14"]
    if command == "live":
        base += ["--once"]
    assert main(base) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and str(params.parent / "alerts.yaml") in lines[0] and "--rules" in lines[0]
    assert main([*base, "--rules", str(tmp_path / "mine.yaml")]) == 2
    assert str(tmp_path / "mine.yaml") in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p"]
