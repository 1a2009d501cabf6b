"""The catalogue's format is strict (one line naming the file and key, exit 2), experiment.yaml names
metrics by id, the shipped templates are the generator's output for the built-in metrics, and a
changed catalogue makes the rollups built with the old one stale."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from catalogue_support import DAYS, END, HERE, REPO, START, Built, params_folder

from expkit.api import run_tile
from expkit.catalogue import load_catalogue, parse_catalogue
from expkit.config import load_experiment
from expkit.errors import ConfigError
from expkit.metrics_sql import (
    builtin_catalogue,
    exposure_ages_query,
    exposure_stats_query,
    ratio_stats_query,
    user_facts_query,
)
from expkit.rollup import day_staleness, stale_dates
from expkit.templates import TEMPLATES
from expkit.tiles.base import resolve_params
from expkit.tiles.ratio import ratio_metric, ratio_tile
from expkit.warehouse import Warehouse

GOOD = {"title": "t", "numerator": {"table": "plays", "agg": "count"}, "denominator": "users",
        "direction": "increase", "format": "number"}


def _with(**changes: Any) -> dict[str, Any]:
    return {"metrics": {"m": {**GOOD, **changes}}}


@pytest.mark.parametrize(("data", "key", "words"), [
    (_with(numerator={"table": "impressions", "agg": "count", "where": {"colour": "red"}}),
     "metrics.m.numerator.where", "unknown column 'colour' of table impressions"),
    (_with(numerator={"table": "plays", "agg": "sum:duration"}), "metrics.m.numerator.agg",
     "unknown column 'duration' of table plays"),
    (_with(numerator={"table": "sessions", "agg": "count"}), "metrics.m.numerator.table",
     "'requests', 'impressions' or 'plays'"),
    (_with(numerator={"table": "plays", "agg": "median:item_id"}), "metrics.m.numerator.agg",
     "unknown aggregate 'median:item_id'"),
    (_with(numerator={"table": "plays", "agg": "sum:source"}), "metrics.m.numerator.agg", "needs a numeric column"),
    (_with(numerator={"table": "plays", "agg": "count", "where": {"shadow": True}}), "metrics.m.numerator.where",
     "unknown column 'shadow'"),
    (_with(numerator={"table": "impressions", "agg": "count", "where": {"position": "1; DROP TABLE x"}}),
     "metrics.m.numerator.where", "does not fit"),
    (_with(numerator={"table": "plays", "agg": "count", "filter": "source = 'rec'"}), "metrics.m.numerator.filter",
     "unknown key"),
    (_with(colour="red"), "metrics.m.colour", "unknown key"),
    (_with(denominator="user"), "metrics.m.denominator", "'users'"),
    (_with(direction="up"), "metrics.m.direction", "'increase' or 'decrease'"),
    (_with(target={"min": 0.1, "max": 0.2}), "metrics.m.target", "either {min: x} or {max: x}"),
    (_with(builtin="recall"), "metrics.m", "no numerator or denominator"),
    ({"metrics": {"m": {**{k: v for k, v in GOOD.items() if k not in ("numerator", "denominator")},
                        "builtin": "ndcg"}}}, "metrics.m.builtin", "unknown builtin 'ndcg'"),
    ({"metrics": {"Bad-Id": GOOD}}, "metrics", "metric id 'Bad-Id'"),
    ({"metrics": {"m": GOOD}, "version": 2}, "version", "unknown key"),
])
def test_bad_catalogue_is_one_line_naming_file_and_key(data: dict[str, Any], key: str, words: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_catalogue(data, "params/metrics.yaml")
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith(f"params/metrics.yaml: key '{key}': "), msg
    assert words in msg, msg


def expkit(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "expkit.cli", *args], capture_output=True, text=True, timeout=120)


def _one_line(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_cli_refuses_a_bad_catalogue_with_exit_2(tmp_path: Path) -> None:
    data = yaml.safe_load((HERE / "metrics.yaml").read_text())
    data["metrics"]["top3_ctr"]["numerator"]["agg"] = "count_distinct:colour"
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(data))
    params = params_folder(tmp_path / "params", tmp_path / "bad.yaml")
    proc = expkit("rollup", "--params", str(params), "--warehouse", str(tmp_path / "none"), "--date", str(END))
    _one_line(proc, str(params.parent / "metrics.yaml"), "key 'metrics.top3_ctr.numerator.agg'", "colour")


def test_cli_refuses_an_unknown_metric_id_with_exit_2(tmp_path: Path) -> None:
    params = params_folder(tmp_path / "params", HERE / "metrics.yaml", "[recall, top5_ctr]")
    proc = expkit("rollup", "--params", str(params), "--warehouse", str(tmp_path / "none"), "--date", str(END))
    _one_line(proc, str(params), "key 'secondary_metrics'", "unknown metric 'top5_ctr'", "metrics.yaml")


@pytest.mark.parametrize(("line", "key", "words"), [
    ("primary_metric: ctr", "primary_metric: clicks", "unknown metric 'clicks'"),
    ("guardrail_metrics: [coverage, error_rate, latency_p95]", "guardrail_metrics: [coverage, latency_p99]",
     "unknown metric 'latency_p99'"),
    ("primary_metric: ctr", "primary_metric: latency_p95", "'latency_p95' is a health metric"),
])
def test_experiment_names_metrics_of_its_catalogue(tmp_path: Path, line: str, key: str, words: str) -> None:
    params = params_folder(tmp_path, REPO / "params" / "metrics.yaml")
    params.write_text(params.read_text().replace(line, key))
    with pytest.raises(ConfigError, match=re.escape(words)) as err:
        load_experiment(params)
    assert str(err.value).startswith(f"{params}: key '{key.split(':')[0]}'")


def test_shipped_catalogue_and_targets() -> None:
    """The shipped catalogue holds the outcome metrics (built in), saves per click and the guardrails
    (coverage and error rate declarative per-user ratios, latency p95 a health metric); the ratio
    guardrails are outcome metrics of the experiment; experiment.yaml's ``targets: <metric>_min``
    still overrides a catalogue target."""
    cat = load_catalogue(REPO / "params" / "metrics.yaml")
    assert cat.ratio_ids == ["ctr", "recall", "session_depth", "save_rate", "saves_per_click", "coverage",
                             "error_rate"]
    assert cat.declarative_ids == ["coverage", "error_rate"]
    assert cat.tile_ids == ["ctr", "recall", "session_depth", "save_rate"]
    assert set(cat.metrics) - set(cat.ratio_ids) == {"latency_p95"}
    cfg = load_experiment(REPO / "params" / "experiment.yaml")
    assert cfg.outcome_metrics == ["ctr", "recall", "session_depth", "save_rate", "coverage", "error_rate"]
    assert cfg.target("ctr").min == 0.010 and cfg.target("error_rate").max == 0.001
    override = cfg.model_copy(update={"targets": cfg.targets.model_copy(update={"ctr_min": 0.02})})
    assert override.target("ctr").min == 0.02 and override.target("recall").min == 0.15


def test_shipped_templates_are_the_generated_text_for_the_builtin_metrics() -> None:
    """The regions of the generated templates are this generator's output (they run alone)."""
    cat = builtin_catalogue()
    assert user_facts_query(cat).template.sql == TEMPLATES["user_facts"].sql
    assert ratio_stats_query(cat).template.sql == TEMPLATES["ratio_stats"].sql
    assert exposure_stats_query(cat).template.sql == TEMPLATES["exposure_stats"].sql
    assert exposure_ages_query(cat).template.sql == TEMPLATES["exposure_ages"].sql


def test_where_values_are_bound_parameters_never_sql_text() -> None:
    cat = parse_catalogue({"metrics": {"m": {**GOOD, "numerator": {
        "table": "plays", "agg": "count", "where": {"source": ["rec'); DROP TABLE plays; --", "search"]}}}}})
    q = user_facts_query(cat)
    assert "DROP TABLE" not in q.template.sql
    assert list(q.values.values()) == ["rec'); DROP TABLE plays; --", "search"]
    assert "p.source IN ($mp_0, $mp_1)" in q.template.sql


def test_changed_catalogue_makes_the_rollups_stale(built: Built, tmp_path: Path) -> None:
    """The catalogue is an input: rollups built with other metric definitions are stale (raw rollups when
    a declarative definition changes, statistics when the set of ratio metrics does), fresh otherwise."""
    wh, cfg = built.warehouse, built.config
    days = [START, END]
    assert stale_dates(wh, days, cfg) == []
    data = yaml.safe_load((HERE / "metrics.yaml").read_text())
    data["metrics"]["top3_ctr"]["numerator"]["where"]["position"] = [1, 2]
    changed = cfg.with_catalogue(parse_catalogue(data, "changed.yaml"))
    assert stale_dates(wh, days, changed) == days
    state = day_staleness(wh, END, catalogue=changed.catalogue)
    assert state.raw.settings_changed == ("metric catalogue",) and "metric catalogue" in state.reason()
    # a title or target is not a definition: nothing to rebuild
    data = yaml.safe_load((HERE / "metrics.yaml").read_text())
    data["metrics"]["top3_ctr"]["title"] = "Top-3 CTR"
    data["metrics"]["top3_ctr"]["target"] = {"min": 0.5}
    assert stale_dates(wh, days, cfg.with_catalogue(parse_catalogue(data, "retitled.yaml"))) == []
    # the shipped catalogue lacks the example metrics: statistics stale, raw rollups too (fewer columns)
    shipped = cfg.with_catalogue(load_catalogue(REPO / "params" / "metrics.yaml"))
    assert day_staleness(wh, END, catalogue=shipped.catalogue).stats.settings_changed == ("metric catalogue",)


def test_listed_metrics_are_in_lift_timeline_and_have_tile_pages(built: Built) -> None:
    """Every metric the experiment lists is compared in the lift tile (summary.json shape
    ``headline.arms.<arm>.metrics.<id>``) and the timeline; ``tile: true`` gives a tile page."""
    args = {"event_date": END, "params_file": built.params_file, "warehouse": built.warehouse.root}
    listed = ["ctr", "recall", "top3_ctr", "rec_play_share", "plays_per_user"]
    assert built.config.outcome_metrics == listed
    lift = run_tile("lift", **args)
    fields = {"control", "treatment", "rel_lift", "rel_low", "rel_high", "pvalue", "seq_low", "seq_high"}
    for arm in lift.headline["arms"].values():
        assert list(arm["metrics"]) == listed
        for m in listed:
            assert fields <= set(arm["metrics"][m]) and arm["metrics"][m]["control"] > 0
    sliced = run_tile("lift", slice="genre", **args)
    by_genre = sliced.table[sliced.table["slice_value"] != "all"]
    assert set(by_genre["metric"]) == {"ctr", "top3_ctr"}  # the per-user ones have no genre slice
    timeline = run_tile("timeline", **args)
    assert set(timeline.headline["metrics"]) == set(listed)
    assert set(timeline.headline["cumulative_lift"]["treatment"]) == set(listed)
    p = resolve_params("top3_ctr", ("bucket", "genre"), event_date=END, slice="genre", **{
        k: v for k, v in args.items() if k != "event_date"})
    page = ratio_tile(p, ratio_metric(p.config, "top3_ctr"))
    assert page.status in ("ok", "warn", "breach") and page.headline["target"] == 0.01
    assert set(page.table["genre"]) > {"action"}


def test_a_catalogue_tile_needs_only_its_yaml_entry(tmp_path: Path) -> None:
    """The registry gives a tile page to every metric of the project's catalogue with ``tile: true``."""
    code = ("from expkit.tiles.registry import TILES; t = TILES['top3_ctr']; "
            "print(list(TILES).index('top3_ctr') == list(TILES).index('save_rate') + 1, t.section, t.title, "
            "'genre' in t.slices)")
    root = tmp_path / "project"
    (root / "params").mkdir(parents=True)
    shutil.copy(REPO / "params" / "experiment.yaml", root / "params")
    shutil.copy(HERE / "metrics.yaml", root / "params" / "metrics.yaml")
    (root / "pyproject.toml").write_text("")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root, timeout=120)
    assert proc.stdout.split() == ["True", "outcomes", "CTR", "in", "the", "top", "3", "positions", "True"], proc.stderr


def _stats(wh: Path, metric: str) -> list[tuple]:
    import duckdb

    rows = duckdb.sql(
        f"select window_name, bucket, slice, slice_value, n, sum_num, sum_den, sum_num2 from read_parquet("
        f"'{wh}/rollups/outcome_stats/event_date={END.isoformat()}/*.parquet') where metric = '{metric}' "
        "and window_name in ('7d', 'cum') order by all").fetchall()
    return rows


def test_rolling_up_one_day_after_a_catalogue_change_rebuilds_the_days_its_windows_read(
        built: Built, tmp_path: Path) -> None:
    """Metrics added to the catalogue, then ``expkit rollup --date END``: END's 7d and cum windows
    read the earlier days, whose per-user facts lacked the new columns; END's statistics summed
    END alone for them (plays per user 7d lift +12.8% instead of +7.6% on a 6-day warehouse).
    Reference: the same events rolled up in order with the new catalogue (the ``built`` fixture)."""
    from expkit.rollup import build_range
    from expkit.synth import generate

    wh = tmp_path / "warehouse"
    generate(wh, days=DAYS, end=END, users=1500, seed=7)  # the fixture's events, byte for byte
    build_range(wh, START, END, load_experiment(params_folder(tmp_path / "old", REPO / "params" / "metrics.yaml")))
    assert _stats(wh, "plays_per_user") == []
    build_range(wh, END, END, built.config)
    for metric in ("plays_per_user", "top3_ctr", "ctr"):
        assert _stats(wh, metric) == _stats(built.warehouse.root, metric) != [], metric
    assert stale_dates(Warehouse.open(wh), [START, END], built.config) == []
