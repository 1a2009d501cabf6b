"""Bad dates, dates without data, window/slice/filter typos, and hostile filter values.

Hostile values are refused by the tiles (they are not slice values of the experiment); below
that check the readers bind them, so they match nothing. They never reach SQL as text: every
statement DuckDB receives is recorded and searched for them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest
from hardening_support import END, PARAMS, Cli, assert_one_line_error, snapshot

import expkit
from expkit import readers
from expkit.errors import ExpkitError
from expkit.readers import ratio_stats, ratio_stats_table
from expkit.tiles import resolve_params

BAD_DATES = ["2026-02-30", "yesterday"]


def _date_argv(command: str, wh: Path, out: Path, date: str) -> list[str | Path]:
    common = ["--warehouse", wh, "--date", date, "--quiet"]
    return {
        "rollup": ["rollup", *common],
        "daily": ["daily", *common, "--out", out],
        "tile": ["tile", "ctr", *common, "--out", out],
        "validate": ["validate", *common, "--no-record"],
        "alerts": ["alerts", "eval", *common],
    }[command]


@pytest.mark.parametrize("command", ["rollup", "daily", "tile", "validate", "alerts"])
@pytest.mark.parametrize("date", BAD_DATES)
def test_a_date_that_is_not_a_date(base_wh: Path, tmp_path: Path, cli: Cli, command: str, date: str) -> None:
    before = snapshot(base_wh)
    code, _, err = cli(*_date_argv(command, base_wh, tmp_path / "r", date))
    assert_one_line_error(code, err, repr(date), "is not a valid date; use YYYY-MM-DD")
    assert snapshot(base_wh) == before and not (tmp_path / "r").exists()


@pytest.mark.parametrize(("command", "message"), [
    ("rollup", "no events for 2020-01-01"),
    ("daily", "no events for 2020-01-01"),
    ("alerts", "no rollups for 2020-01-01"),
])
def test_a_date_without_data(base_wh: Path, tmp_path: Path, cli: Cli, command: str, message: str) -> None:
    before = snapshot(base_wh)
    code, _, err = cli(*_date_argv(command, base_wh, tmp_path / "r", "2020-01-01"))
    assert_one_line_error(code, err, message)
    assert snapshot(base_wh) == before and not (tmp_path / "r").exists()


def test_validating_a_date_without_data_fails_its_checks(base_wh: Path, cli: Cli) -> None:
    code, out, _ = cli("validate", "--warehouse", base_wh, "--date", "2020-01-01", "--no-record")
    assert code == 1 and "partition event_date=2020-01-01 of requests is missing" in out


@pytest.mark.parametrize("tile", ["ctr", "lift", "allocation", "latency", "freshness"])
def test_tile_on_a_date_without_data_is_no_data(base_wh: Path, tile: str) -> None:
    res = expkit.run_tile(tile, warehouse=base_wh, event_date="2020-01-01", params_file=PARAMS)
    assert res.status == "no_data"


@pytest.mark.parametrize(("override", "message"), [
    ("window=7days", "parameter window='7days' is not a window"),
    ("slice=country", "parameter slice='country' is not a slice column"),
    ("slice=genre", "tile recall does not support slice='genre'"),
    ("windw=7d", "-p windw=...: unknown parameter"),
    ("filters={\"country\": [\"eu\"]}", "parameter filters: unknown column 'country'"),
    ("filters={\"region\": [", "parameter filters: not valid JSON/YAML"),
    ("filters=[eu]", "parameter filters must map a slice column to a list of values"),
    ("filters={\"region\": []}", "'region' has an empty list of values"),
    ("buckets=control,tretment", "unknown bucket(s) ['tretment']"),
    ("window", "expected key=value"),
])
def test_parameter_typos_fail_before_a_kernel_starts(base_wh: Path, tmp_path: Path, cli: Cli,
                                                     override: str, message: str) -> None:
    out = tmp_path / "r"
    code, _, err = cli("tile", "recall", "--warehouse", base_wh, "--date", END.isoformat(), "--out", out,
                       "-p", override)
    assert_one_line_error(code, err, message)
    assert not out.exists()


HOSTILE = [
    "eu' OR '1'='1",
    'eu"; DROP TABLE outcome_stats; --',
    "eu' /* comment */ --",
    "'); SELECT * FROM read_csv('/etc/passwd'); --",
    "Île-de-France 東京 🇪🇺",
    "eu\u202egnp.exe",
]


class RecordingConnection:
    """A DuckDB connection that records the text of every statement it is given."""

    def __init__(self, con: duckdb.DuckDBPyConnection, log: list[tuple[str, Any]]):
        self._con, self._log = con, log

    def _record(self, name: str, sql: str, *args: Any, **kwargs: Any) -> Any:
        self._log.append((sql, args[0] if args else kwargs.get("params")))
        return getattr(self._con, name)(sql, *args, **kwargs)

    def execute(self, sql: str, *args: Any, **kwargs: Any) -> Any:
        return self._record("execute", sql, *args, **kwargs)

    def sql(self, sql: str, *args: Any, **kwargs: Any) -> Any:
        return self._record("sql", sql, *args, **kwargs)

    query = sql

    def cursor(self) -> RecordingConnection:
        return RecordingConnection(self._con.cursor(), self._log)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._con, name)


@pytest.fixture
def statements(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any]]:
    """Every (SQL text, bound parameters) DuckDB receives during the test."""
    log: list[tuple[str, Any]] = []
    real = duckdb.connect
    monkeypatch.setattr(duckdb, "connect", lambda *a, **kw: RecordingConnection(real(*a, **kw), log))
    # the readers share one database per process: open a recorded one for this test
    monkeypatch.setattr(readers, "_shared", None)
    return log


@pytest.mark.parametrize("value", HOSTILE)
@pytest.mark.parametrize(("tile", "slice_", "column"), [
    ("ctr", "bucket", "region"), ("ctr", "genre", "genre"), ("allocation", "bucket", "cohort"),
    ("lift", "bucket", "bucket"), ("latency", "bucket", "region"), ("errors", "client", "client"),
])
def test_tiles_refuse_hostile_filter_values(
    base_wh: Path, statements: list[tuple[str, Any]], tile: str, slice_: str, column: str, value: str
) -> None:
    before = snapshot(base_wh)
    with pytest.raises(ExpkitError) as err:
        expkit.run_tile(tile, warehouse=base_wh, event_date=END, params_file=PARAMS, slice=slice_,
                        filters={column: [value]})
    assert repr(value) in str(err.value) and "\n" not in str(err.value)
    assert not [sql for sql, _ in statements if value in sql]
    assert snapshot(base_wh) == before


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_filter_values_reach_sql_only_as_bound_parameters(
    base_wh: Path, statements: list[tuple[str, Any]], value: str
) -> None:
    """Below the tiles' own check, the readers bind filter values: they match nothing."""
    p = resolve_params("ctr", ("bucket", "region"), event_date=END, params_file=PARAMS, warehouse=base_wh,
                       filters={"region": [value], "cohort": ["new", value]})
    assert ratio_stats(p, "ctr").empty
    assert ratio_stats_table(p, ["ctr", "save_rate"], windows=["24h", "7d"]).empty
    assert statements and not [sql for sql, _ in statements if value in sql]
    assert any(value in _bound_values(params) for _, params in statements)


def _bound_values(params: Any) -> list[Any]:
    """The values bound to a statement, lists flattened."""
    values = params.values() if isinstance(params, dict) else (params or [])
    return [x for v in values for x in (v if isinstance(v, list | tuple) else [v])]
