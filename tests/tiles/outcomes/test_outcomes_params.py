"""Every outcome tile for every window and supported slice; bad input; bound filter values;
no data; rollups only (docs/reports.md, "The tile side of the contract")."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os

import duckdb
import pytest
from outcomes_support import END, OUTCOME_IDS, WINDOWS, Built

import expkit.readers
from expkit.errors import ExpkitError
from expkit.tiles import TileResult
from expkit.tiles.arms import ALL_SLICES
from expkit.tiles.base import resolve_params
from expkit.tiles.registry import TILES

INJECTION = "'; DROP TABLE x; --"


def check_result(result: TileResult, tile: str) -> dict:
    """What every outcome tile owes its page and summary.json; returns the sidecar."""
    sidecar = json.loads(json.dumps(result.sidecar(), allow_nan=False))
    assert sidecar["tile"] == tile and sidecar["section"] == "outcomes"
    assert result.status in ("ok", "warn", "breach", "no_data")
    if result.status == "no_data":
        return sidecar
    arms = sidecar["headline"]["arms"]
    assert arms, tile
    for arm, a in arms.items():
        assert {"estimate", "low", "high"} <= set(a), (tile, arm)
        if a["estimate"] is not None and a["low"] is not None:
            assert a["low"] <= a["estimate"] <= a["high"], (tile, arm, a)
    assert not result.table.empty and result.charts
    for chart in result.charts:
        chart.to_dict()  # a valid Vega-Lite spec
    return sidecar


@pytest.mark.parametrize(("tile", "window"), list(itertools.product(OUTCOME_IDS, WINDOWS)))
def test_every_window(clean: Built, tile: str, window: str) -> None:
    check_result(clean.run(tile, window=window), tile)


@pytest.mark.parametrize(("tile", "slice_"), [(t, s) for t in OUTCOME_IDS for s in TILES[t].slices if s != "bucket"])
def test_every_supported_slice(clean: Built, tile: str, slice_: str) -> None:
    result = clean.run(tile, slice=slice_)
    check_result(result, tile)
    if tile != "allocation":
        assert slice_ in result.table.columns or "slice_value" in result.table.columns


@pytest.mark.slow
@pytest.mark.parametrize(("tile", "window"), list(itertools.product(OUTCOME_IDS, WINDOWS)))
def test_every_window_and_slice(clean: Built, tile: str, window: str) -> None:
    """The full product (the fast tests cover each dimension separately)."""
    for slice_ in TILES[tile].slices:
        check_result(clean.run(tile, window=window, slice=slice_), tile)


def test_lift_rows_and_adjustment(clean: Built) -> None:
    """Sliced lift: the overall rows plus one per value; BH over every row shown; per-user metrics
    only for user-level slices."""
    by_region = clean.run("lift", slice="region").table
    assert set(by_region["metric"]) == {"ctr", "recall", "session_depth", "save_rate"}
    assert "all" in set(by_region["slice_value"]) and len(set(by_region["slice_value"])) > 2
    from expkit.stats import adjust_pvalues

    assert by_region["adj_pvalue"].to_numpy() == pytest.approx(adjust_pvalues(by_region["pvalue"].to_numpy(), "bh"))
    by_genre = clean.run("lift", slice="genre").table
    assert set(by_genre.loc[by_genre["slice_value"] != "all", "metric"]) == {"ctr", "save_rate"}


def test_every_p_value_is_that_of_the_interval_beside_it(clean: Built) -> None:
    """One statistic per claim: a relative interval excludes 0 exactly when its p-value is below
    0.05, fixed-horizon and always-valid, on every row the lift tile shows (issue's check: the
    p-values of the absolute difference disagreed with the relative intervals)."""
    rows = clean.run("lift", slice="region").table.dropna(subset=["pvalue", "seq_pvalue"])
    assert len(rows) > 10
    fixed = (rows["rel_low"] > 0) | (rows["rel_high"] < 0)
    always = (rows["seq_low"] > 0) | (rows["seq_high"] < 0)
    assert (fixed == (rows["pvalue"] < 0.05)).all()
    assert (always == (rows["seq_pvalue"] < 0.05)).all()


def test_filters_narrow_the_population(clean: Built) -> None:
    """A user-attribute filter re-aggregates the per-user facts: fewer users, same arms."""
    everyone = clean.run("ctr", window="7d").headline["arms"]
    eu = clean.run("ctr", window="7d", filters={"region": ["eu"]}).headline["arms"]
    assert all(0 < eu[a]["users"] < everyone[a]["users"] for a in everyone)
    alloc = clean.run("allocation", filters='{"region": ["eu", "na"]}').headline["arms"]
    assert all(a["users"] > 0 for a in alloc.values())
    genre = clean.run("save_rate", slice="genre", filters={"genre": ["drama"]})
    assert set(genre.table.loc[genre.table["metric"].str.startswith("save_rate"), "genre"]) == {"drama"}


@pytest.mark.parametrize("tile", [*OUTCOME_IDS, "readout"])
def test_impression_attribute_filters_are_refused_unless_sliced_by_them(clean: Built, tile: str) -> None:
    """A user has impressions of several surfaces, genres and providers, so such a filter cannot
    narrow the users a tile compares; it used to be ignored without a word (the numbers of every
    user under a page saying ``filters: {"surface": ["search"]}``)."""
    for column, value in (("surface", "search"), ("genre", "drama"), ("provider", "indie")):
        with pytest.raises(ExpkitError, match=f"parameter filters: {column} is an attribute of each impression"):
            clean.run(tile, window="7d", filters={column: [value]})


@pytest.mark.parametrize("tile", ["readout", "novelty"])
def test_tiles_of_the_experiment_to_date_say_so_whatever_the_window(clean: Built, tile: str) -> None:
    """The readout and the novelty tile always read the experiment to date (docs/readout.md): their
    page header and sidecar said "window 24h" (the notebook's default) over numbers of every day."""
    for window in ("24h", "7d"):
        result = clean.run(tile, window=window)
        assert result.params["window"] == "cum" and result.sidecar()["params"]["window"] == "cum", window
    assert clean.run("lift", window="7d").params["window"] == "7d"


def test_a_metric_added_after_the_rollup_is_named_not_silently_left_out(clean: Built, tmp_path) -> None:
    """A metric added to the catalogue (and named in ``secondary_metrics``) has no statistics until
    the day is rolled up again; the lift tile left it out without a word."""
    import yaml

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    catalogue = yaml.safe_load(open(os.path.join(root, "params", "metrics.yaml")).read())
    catalogue["metrics"]["plays_per_user"] = {"title": "Plays per user", "direction": "increase", "format": "number",
                                              "numerator": {"table": "plays", "agg": "count"}, "denominator": "users"}
    (tmp_path / "metrics.yaml").write_text(yaml.safe_dump(catalogue, sort_keys=False))
    doc = yaml.safe_load(clean.params_file.read_text())
    doc["secondary_metrics"] = ["recall", "plays_per_user"]
    (tmp_path / "experiment.yaml").write_text(yaml.safe_dump(doc))
    result = clean.run("lift", window="7d", params_file=str(tmp_path / "experiment.yaml"))
    assert "plays_per_user" not in result.headline["arms"]["treatment"]["metrics"]
    assert any("plays_per_user" in n and "expkit rollup --date 2026-11-14" in n for n in result.notes), result.notes
    assert not any("recall" in n for n in result.notes)


def test_the_lift_summary_names_its_window(clean: Built) -> None:
    """The index shows the lift card's summary under the verdict, whose lift is the experiment to
    date's: without its window the card's other CTR lift could not be told apart."""
    for window in ("24h", "7d"):
        assert clean.run("lift", window=window).summary.endswith(f"; over {window}")


BAD_INPUT = [
    ({"slice": "country"}, "is not a slice column"),
    ({"slice": "genre"}, "does not support slice"),
    ({"window": "3w"}, "is not a window"),
    ({"filters": {"country": ["eu"]}}, "unknown column"),
    ({"filters": {"region": ["eu'"]}}, "does not occur"),
    ({"filters": '{"region": ["eu]}'}, "not valid JSON/YAML"),
]


@pytest.mark.parametrize(("tile", "bad"), [(t, b) for t in ("recall", "allocation", "timeline") for b in BAD_INPUT])
def test_bad_input_is_a_clear_error(clean: Built, tile: str, bad: tuple[dict, str]) -> None:
    overrides, message = bad
    with pytest.raises(ExpkitError, match=message):
        clean.run(tile, **overrides)


def test_unsupported_slices_are_named(clean: Built) -> None:
    with pytest.raises(ExpkitError, match=r"allocation does not support slice='surface'.*'cohort'"):
        clean.run("allocation", slice="surface")
    with pytest.raises(ExpkitError, match=r"timeline does not support slice='region'.*\['bucket'\]"):
        clean.run("timeline", slice="region")
    with pytest.raises(ExpkitError, match="lift tile compares treatment arms"):
        clean.run("lift", buckets=["control"])


def test_other_tiles_unaffected_by_a_failure(clean: Built) -> None:
    with pytest.raises(ExpkitError):
        clean.run("ctr", filters={"region": [INJECTION]})
    assert clean.run("ctr").status == "ok" and clean.run("lift").status == "ok"


class RecordingConnection:
    """A DuckDB connection that records every SQL text and holds a table ``x`` to drop."""

    def __init__(self, log: list[str]) -> None:
        self._con = duckdb.connect()
        self._con.execute("CREATE TABLE x AS SELECT 1 AS one")
        self._log = log

    def execute(self, sql: str, params: object = None) -> duckdb.DuckDBPyConnection:
        self._log.append(sql)
        return self._con.execute(sql, params) if params is not None else self._con.execute(sql)

    def close(self) -> None:
        assert self._con.execute("SELECT count(*) FROM x").fetchone() == (1,)
        self._con.close()

    def __getattr__(self, name: str) -> object:
        return getattr(self._con, name)


def test_filter_values_are_bound_never_pasted(clean: Built, monkeypatch: pytest.MonkeyPatch) -> None:
    """A filter value written as SQL matches nothing, drops nothing and never enters SQL text."""
    log: list[str] = []
    monkeypatch.setattr(expkit.readers, "connect", lambda: RecordingConnection(log))
    for filters in ({"region": [INJECTION]}, {"bucket": [INJECTION]}, {"cohort": ["new", INJECTION]}):
        p = resolve_params("ctr", ALL_SLICES, filters=filters, **clean.kwargs())
        for window in ("1h", "7d"):
            df = expkit.readers.ratio_stats(p, "ctr", window=window)
            assert filters.get("cohort") or df.empty
        assert expkit.readers.ratio_stats_table(p, ["ctr", "recall"], ["24h", "cum"]).shape[1] == 20
        with pytest.raises(ExpkitError, match="does not occur"):
            clean.run("ctr", filters=filters)
    assert log and not any("DROP" in sql or INJECTION in sql for sql in log)


def test_no_data_when_the_window_is_empty(clean: Built) -> None:
    """A report date after the data: every tile says "no data", never a zero."""
    after = (END + dt.timedelta(days=1)).isoformat()
    for tile in OUTCOME_IDS:
        result = clean.run(tile, event_date=after)
        assert result.status == "no_data", tile
        assert result.headline["no_data"] and result.headline["reason"]


def test_tiles_read_rollups_only(clean: Built, tmp_path) -> None:
    """With the raw events gone, every tile gives the same sidecar: run time follows rollup size,
    not event volume."""
    bare = tmp_path / "rollups_only"
    (bare / "events").mkdir(parents=True)
    os.symlink(clean.path / "rollups", bare / "rollups")
    for tile in OUTCOME_IDS:
        full = clean.run(tile, window="7d").sidecar()
        only = clean.run(tile, window="7d", warehouse=str(bare)).sidecar()
        full["params"].pop("warehouse")
        only["params"].pop("warehouse")
        assert json.dumps(full, sort_keys=True) == json.dumps(only, sort_keys=True), tile


def test_buckets_narrow_what_is_shown(clean: Built) -> None:
    """``buckets`` selects the arms shown; shares, SRM and lifts still use the control and every arm."""
    assert set(clean.run("ctr", buckets=["treatment"]).headline["arms"]) == {"treatment"}
    alloc = clean.run("allocation", buckets="treatment").headline["arms"]
    assert set(alloc) == {"treatment"} and 0.45 < alloc["treatment"]["estimate"] < 0.55
    assert set(clean.run("lift", buckets=["treatment"]).headline["arms"]) == {"treatment"}
    timeline = clean.run("timeline", buckets=["control"])
    assert set(timeline.headline["arms"]) == {"control"} and not timeline.headline["cumulative_lift"]
    assert len(timeline.charts) == 1
