"""Planted effects of `expkit synth`: --lift, arm-limited incidents, --pre-days, --segment-lift,
--novelty, and the refusal of bad values. Every warehouse here is written by a real
`expkit synth` command line and measured from its raw events with DuckDB.

Measured lifts are relative CTR lifts, Σclicks/Σimpressions per arm, with the delta-method
standard error of the ratio of the two arms' ratios of per-user sums (Deng, Knoblich & Lu,
"Applying the Delta Method in Metric Analytics", KDD 2018, sections 3.1 and 3.3: the variance
of a ratio of per-user sums, and of a relative difference). Users are the randomization unit,
so these standard errors are cluster-robust; a measurement agrees with the truth when it is
within 4 standard errors (two-sided p = 6e-5 per check).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import re
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import pytest
from synth_support import END, Warehouse

from expkit.cli import main
from expkit.errors import ExpkitError
from expkit.synth import Incident, generate, parse_incident

PARAMS = Path(__file__).resolve().parents[2] / "params" / "experiment.yaml"
Z = 4.0


def synth(path: Path, *flags: str, users: int, days: int, seed: int = 3) -> Warehouse:
    """Run `expkit synth` with ``flags`` into ``path`` and open the warehouse."""
    code = main(["synth", "--out", str(path), "--days", str(days), "--end", END.isoformat(),
                 "--users", str(users), "--seed", str(seed), "--params", str(PARAMS), "--quiet",
                 *flags])
    assert code == 0
    return Warehouse(path, json.loads((path / "truth.json").read_text()))


class Lift(NamedTuple):
    """A measured relative lift and its delta-method standard error."""

    est: float
    se: float

    def z(self, truth: float) -> float:
        """Standard errors between the measurement and ``truth``."""
        return (self.est - truth) / self.se


def relative_lift(per_user: pd.DataFrame) -> Lift:
    """Relative lift treatment/control − 1 of Σnum/Σden from per-unit ``bucket, num, den`` rows."""
    ratio, var = {}, {}
    for arm, g in per_user.groupby("bucket"):
        num, den = g.num.to_numpy(float), g.den.to_numpy(float)
        n, r = len(den), num.sum() / den.sum()
        ratio[arm] = r
        var[arm] = n / (n - 1) * ((num - r * den) ** 2).sum() / den.sum() ** 2  # Var(r), Deng 3.1
    rel = ratio["treatment"] / ratio["control"]
    se = rel * math.sqrt(var["treatment"] / ratio["treatment"] ** 2
                         + var["control"] / ratio["control"] ** 2)  # Deng 3.3
    return Lift(rel - 1.0, se)


def ctr_lift(wh: Warehouse, days: list[dt.date], where: str = "true") -> Lift:
    """CTR lift over ``days`` from distinct non-shadow rows, users filtered by ``where`` (a
    condition on impression columns such as region)."""
    d = wh.df(f"""
        with i as (select user_id, any_value(bucket) bucket, count(*) den from (
                     select distinct request_id, item_id, user_id, bucket from impressions
                     where not shadow and event_date in (select unnest($1::date[])) and {where})
                   group by 1),
             c as (select user_id, count(*) num from (
                     select distinct click_id, user_id from clicks
                     where not shadow and event_date in (select unnest($1::date[])))
                   group by 1)
        select i.bucket, i.den, coalesce(c.num, 0) num from i left join c using (user_id)""",
              [days])
    return relative_lift(d)


# --- a warehouse with a planted lift, a segment lift, pre-days and arm-limited incidents ----

LIFT, EU_LIFT = 0.5, -0.3
START = END - dt.timedelta(days=1)
PRE = [START - dt.timedelta(days=2), START - dt.timedelta(days=1)]
EXPERIMENT = [START, END]


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    return synth(tmp_path_factory.mktemp("planted") / "wh", "--lift", f"treatment={LIFT}",
                 "--segment-lift", f"region=eu:{EU_LIFT}", "--pre-days", "2",
                 "--incident", "error_burst@08:00/600:treatment",
                 "--incident", "duplicate_events:control", users=6000, days=2)


def test_truth_records_planted_effects(planted: Warehouse) -> None:
    t = planted.truth
    assert t["true_lift"] == {"treatment": LIFT}
    assert t["metric_lift"]["ctr"]["treatment"] == pytest.approx(LIFT, abs=1e-3)
    assert (t["start_date"], t["end_date"], t["days"]) == (START.isoformat(), END.isoformat(), 2)
    assert (t["pre_days"], t["pre_start_date"]) == (2, PRE[0].isoformat())
    assert list(t["rows_by_date"]) == [d.isoformat() for d in PRE + EXPERIMENT]
    (seg,) = t["segment_lifts"]
    assert (seg["slice"], seg["value"], seg["lift"], seg["arms"]) == ("region", "eu", EU_LIFT, ["treatment"])
    assert seg["metric_lift"]["ctr"]["treatment"] == pytest.approx(EU_LIFT, abs=1e-3)
    eu_users = planted.df("select count(distinct user_id) n from requests where region = 'eu'").n[0]
    assert sum(seg["users"].values()) >= eu_users  # users assigned, of whom these were active
    assert [(i["name"], i["arm"]) for i in t["incidents"]] == [("error_burst", "treatment"),
                                                               ("duplicate_events", "control")]
    assert t["novelty"] == {}


def test_planted_lift_measured_outside_the_segment(planted: Warehouse) -> None:
    lift = ctr_lift(planted, EXPERIMENT, "region <> 'eu'")
    assert abs(lift.z(planted.truth["metric_lift"]["ctr"]["treatment"])) < Z, lift
    assert lift.est - Z * lift.se > 0.05, lift  # not the default lift


def test_segment_lift_measured_in_the_segment(planted: Warehouse) -> None:
    lift = ctr_lift(planted, EXPERIMENT, "region = 'eu'")
    truth = planted.truth["segment_lifts"][0]["metric_lift"]["ctr"]["treatment"]
    assert abs(lift.z(truth)) < Z, lift
    assert lift.est + Z * lift.se < LIFT, lift  # not the arm's lift


def test_pre_days_have_buckets_and_no_effect(planted: Warehouse) -> None:
    for table in ("requests", "impressions", "clicks", "saves", "plays"):
        parts = sorted(p.name for p in (planted.path / "events" / table).iterdir())
        assert parts == [f"event_date={d}" for d in PRE + EXPERIMENT], table
    r = planted.df("""select
        count(*) filter (where event_date < $1) pre_requests,
        count(*) filter (where event_date < $1 and bucket not in ('control', 'treatment')) no_arm,
        count(*) filter (where event_date < $1 and status = 'error') pre_errors,
        max(user_id) filter (where event_date < $1) pre_max_user,
        count(distinct user_id) filter (where event_date < $1 and user_id in
            (select user_id from requests where event_date >= $1)) pre_users_in_experiment
        from requests""", [START]).iloc[0]
    assert r.pre_requests > 0 and r.no_arm == 0
    assert r.pre_errors / r.pre_requests < 0.001  # incidents stay in the experiment's days
    # The same population: user ids 1..N, most of them active in both periods, and a user
    # keeps their arm and attributes from the pre-period into the experiment.
    assert r.pre_max_user <= 6000 and r.pre_users_in_experiment > 3000
    assert planted.df("""select count(*) n from (select user_id from requests group by 1
        having count(distinct (bucket, cohort, region, client)) > 1)""").n[0] == 0
    lift = ctr_lift(planted, PRE)
    assert abs(lift.z(0.0)) < Z, lift
    assert lift.est + Z * lift.se < LIFT, lift


def test_arm_limited_error_burst_hits_only_that_arm(planted: Warehouse) -> None:
    entry = planted.truth["incidents"][0]
    r = planted.df("""select bucket, timestamp_ms >= $2 and timestamp_ms < $3 as inside,
        count(*) n, avg((status = 'error')::int) rate
        from requests where event_date = $1 and not shadow group by all""",
                   [END, entry["start_ms"], entry["end_ms"]]).set_index(["bucket", "inside"])
    assert r.n.min() > 1000
    assert 0.01 < r.rate["treatment", True] < 0.06
    assert r.rate["control", True] < 0.001
    assert r.rate["treatment", False] < 0.001 and r.rate["control", False] < 0.001
    errors = planted.df("""select count(*) n from requests where bucket = 'treatment' and
        status = 'error' and timestamp_ms >= $1 and timestamp_ms < $2""",
                        [entry["start_ms"], entry["end_ms"]]).n[0]
    assert entry["injected"]["errors"] == errors


def test_arm_limited_duplicates_only_in_that_arm(planted: Warehouse) -> None:
    d = planted.df("""select r.bucket, count(*) n, count(*) - count(distinct c.click_id) dup
        from clicks c join (select distinct request_id, bucket from requests) r using (request_id)
        where c.event_date = $1 group by 1""", [END]).set_index("bucket")
    assert d.dup["treatment"] == 0
    assert 0.01 < d.dup["control"] / d.n["control"] < 0.03
    i = planted.df("""select bucket, count(*) n, count(*) - count(distinct (request_id, item_id)) dup
        from impressions where event_date = $1 group by 1""", [END]).set_index("bucket")
    assert i.dup["treatment"] == 0 and 0.01 < i.dup["control"] / i.n["control"] < 0.03
    injected = planted.truth["incidents"][1]["injected"]
    assert injected == {"clicks": d.dup.sum(), "impressions": i.dup.sum()}


# --- novelty -------------------------------------------------------------------------------

NOVELTY_DAYS = 4


@pytest.fixture(scope="module")
def novelty(tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    return synth(tmp_path_factory.mktemp("novelty") / "wh", "--novelty", "treatment=1.0:1",
                 users=5000, days=NOVELTY_DAYS)


def _lift_by_exposure_day(wh: Warehouse) -> dict[int, Lift]:
    """CTR lift per day since each user's first non-shadow request (one row per user and day)."""
    d = wh.df("""
        with first as (select user_id, min(event_date) d0 from requests where not shadow group by 1),
             i as (select user_id, event_date, any_value(bucket) bucket, count(*) den
                   from impressions where not shadow group by 1, 2),
             c as (select user_id, event_date, count(*) num from clicks where not shadow group by 1, 2)
        select datediff('day', first.d0, i.event_date) age, i.bucket, i.den, coalesce(c.num, 0) num
        from i join first using (user_id) left join c using (user_id, event_date)""")
    return {int(age): relative_lift(g) for age, g in d.groupby("age")}


def test_novelty_truth_documents_the_formula(novelty: Warehouse) -> None:
    n = novelty.truth["novelty"]["treatment"]
    assert (n["initial"], n["half_life_days"], n["base_lift"]) == (1.0, 1.0, 0.05)
    assert "2 ** (-a / half_life_days)" in n["formula"]
    # lift(a) = base + (initial - base) * 2**(-a / half_life): 1, 0.525, 0.2875, 0.16875.
    assert n["lift_by_exposure_day"] == pytest.approx([1.0, 0.525, 0.2875, 0.16875])


def test_novelty_decays_by_exposure_day(novelty: Warehouse) -> None:
    truth = novelty.truth["novelty"]["treatment"]["ctr_lift_by_exposure_day"]
    lifts = _lift_by_exposure_day(novelty)
    assert sorted(lifts) == list(range(NOVELTY_DAYS))
    for age, lift in lifts.items():
        assert abs(lift.z(truth[age])) < Z, (age, lift, truth[age])
    # The decay itself: day 0 against day 2 and later (the bound adds the standard errors,
    # conservative for measurements that share users).
    for later in (2, 3):
        assert lifts[0].est - lifts[later].est > Z * (lifts[0].se + lifts[later].se)


# --- the default stays the same; A/A ----------------------------------------------------------

SMALL = {"users": 2000, "days": 1}


def _digest(path: Path, day: dt.date | None = None) -> str:
    """SHA-256 over the bytes of every event file (of ``day`` only, when given)."""
    h = hashlib.sha256()
    for f in sorted((path / "events").rglob("*.parquet")):
        if day is None or f"event_date={day}" in f.parts:
            h.update(str(f.relative_to(path)).encode())
            h.update(f.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Warehouse]:
    root = tmp_path_factory.mktemp("small")
    return {
        "default": synth(root / "default", **SMALL),
        "explicit": synth(root / "explicit", "--lift", "treatment=0.05", "--pre-days", "0", **SMALL),
        "pre": synth(root / "pre", "--pre-days", "1", **SMALL),
        "aa": synth(root / "aa", "--lift", "treatment=0", **SMALL),
    }


def test_default_flags_write_identical_bytes(small: dict[str, Warehouse]) -> None:
    """Naming the defaults changes no byte; pre-days add days and change none of the others."""
    assert _digest(small["default"].path) == _digest(small["explicit"].path)
    assert _digest(small["default"].path, END) == _digest(small["pre"].path, END)
    assert _digest(small["default"].path) != _digest(small["pre"].path)
    assert small["default"].truth["true_lift"] == {"treatment": 0.05}


def test_aa_has_no_lift(small: dict[str, Warehouse]) -> None:
    aa, default = small["aa"], small["default"]
    assert aa.truth["true_lift"] == {"treatment": 0.0}
    assert aa.truth["metric_lift"]["ctr"]["treatment"] == 0.0
    lift = ctr_lift(aa, [END])
    assert abs(lift.z(0.0)) < Z, lift
    # Same seed, same uniforms: the control arm's clicks are untouched, and the treatment's
    # are those of the default run minus the ones its 5% lift added. Each of the n A/A clicks
    # is matched by the default run's, and the extra clicks are Bernoulli draws on the cells
    # with p*w <= u < 1.05*p*w: about 0.05 n of them, with standard deviation about
    # sqrt(0.05 n). (Requests of the day's last 5 minutes are left out: their clicks' lags,
    # drawn after the clicks, decide whether they fall on the next day.)
    cutoff = aa.day_ms(END) + 86_400_000 - 300_000
    clicks = """(select c.request_id, c.item_id, r.bucket from read_parquet('{}/events/clicks/*/*.parquet') c
        join (select distinct request_id, bucket, timestamp_ms from read_parquet(
              '{}/events/requests/*/*.parquet')) r using (request_id) where r.timestamp_ms < {})"""
    a, d = (clicks.format(w.path, w.path, cutoff) for w in (aa, default))
    n = aa.df(f"select bucket, count(*) n from {a} group by 1").set_index("bucket").n
    m = aa.df(f"select bucket, count(*) n from {d} group by 1").set_index("bucket").n
    assert n["control"] == m["control"]
    assert aa.df(f"select count(*) n from ({a} except all {d})").n[0] == 0
    extra = m["treatment"] - n["treatment"]
    assert abs(extra - 0.05 * n["treatment"]) < Z * math.sqrt(0.05 * n["treatment"]), (extra, n)


# --- parsing and refusal of bad values ---------------------------------------------------------

@pytest.mark.parametrize(("spec", "expected"), [
    ("error_burst@08:00/600:treatment", Incident("error_burst", 480, 600, "treatment")),
    ("error_burst:treatment", Incident("error_burst", 1170, 20, "treatment")),
    ("error_burst@08:00:arm:1", Incident("error_burst", 480, 20, "arm:1")),
    ("error_burst@08:00/600", Incident("error_burst", 480, 600, None)),
])
def test_parse_incident_with_arm(spec: str, expected: Incident) -> None:
    assert parse_incident(spec) == expected


@pytest.mark.parametrize(("flags", "message"), [
    (["--lift", "treatment"], r"--lift 'treatment': expected ARM=VALUE"),
    (["--lift", "treatment=big"], r"--lift 'treatment=big': VALUE 'big' must be a relative lift"),
    (["--lift", "treatment=-1.5"], r"--lift 'treatment=-1.5': VALUE '-1.5' must be"),
    (["--lift", "treatmnt=0.1"], r"--lift 'treatmnt=0.1': unknown arm 'treatmnt'; the non-control arms are treatment"),
    (["--lift", "control=0.1"], r"--lift 'control=0.1': 'control' is the control arm"),
    (["--lift", "treatment=0.1", "--lift", "treatment=0.2"], r"--lift 'treatment=0.2': arm 'treatment' has a lift"),
    (["--incident", "error_burst@08:00/600:treatmnt"],
     r"--incident 'error_burst@08:00/600:treatmnt': unknown arm 'treatmnt'; the arms are control, treatment"),
    (["--incident", "error_burst@08:00/600:"], r"--incident: malformed incident spec 'error_burst@08:00/600:'"),
    (["--pre-days", "-1"], r"argument --pre-days: '-1' is out of range"),
    (["--pre-days", "two"], r"argument --pre-days: 'two' is not an integer"),
    (["--segment-lift", "region=eu"], r"--segment-lift 'region=eu': expected SLICE=VALUE:LIFT"),
    (["--segment-lift", "region=mars:0.1"],
     r"--segment-lift 'region=mars:0.1': unknown value 'mars' of region; the values are na, eu, apac, latam"),
    (["--segment-lift", "genre=drama:0.1"], r"--segment-lift 'genre=drama:0.1': 'genre' is not a user attribute"),
    (["--segment-lift", "region=eu:nan"], r"--segment-lift 'region=eu:nan': LIFT 'nan' must be"),
    (["--segment-lift", "region=eu:0.1", "--segment-lift", "region=eu:0.2"], r"region=eu is given twice"),
    (["--novelty", "treatment=0.2"], r"--novelty 'treatment=0.2': expected ARM=INITIAL:HALF_LIFE_DAYS"),
    (["--novelty", "treatment=0.2:0"], r"--novelty 'treatment=0.2:0': HALF_LIFE_DAYS '0' must be"),
    (["--novelty", "treatment=-2:3"], r"--novelty 'treatment=-2:3': INITIAL '-2' must be"),
    (["--novelty", "bogus=0.2:3"], r"--novelty 'bogus=0.2:3': unknown arm 'bogus'"),
])
def test_bad_flag_values_exit_2_and_write_nothing(tmp_path, capsys, flags: list[str], message: str) -> None:
    out = tmp_path / "wh"
    code = main(["synth", "--out", str(out), "--days", "1", "--end", END.isoformat(), "--users", "50",
                 "--params", str(PARAMS), "--quiet", *flags])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("expkit synth: error: ") and err.count("\n") == 1, err
    assert re.search(message, err), err
    assert not out.exists()


@pytest.mark.parametrize(("kw", "message"), [
    ({"pre_days": -1}, r"pre_days must be a whole number >= 0"),
    ({"incidents": ["error_burst:treatmnt"]}, r"incident 'error_burst' names arm 'treatmnt'"),
    ({"segment_lifts": ["client=fridge:0.1"]}, r"segment_lifts 'client=fridge:0.1': unknown value 'fridge'"),
    ({"novelty": ["control=0.1:2"]}, r"novelty 'control=0.1:2': 'control' is the control arm"),
])
def test_bad_api_values_raise_and_write_nothing(tmp_path, kw: dict, message: str) -> None:
    out = tmp_path / "wh"
    with pytest.raises(ExpkitError, match=message) as err:
        generate(out, days=1, end=END, users=50, **kw)
    assert "\n" not in str(err.value)
    assert not out.exists()


def test_user_lift_combines_segment_and_novelty() -> None:
    """Unit check of the per-user lift against the documented formula, by hand."""
    from expkit.synth.effects import Effects, Novelty, SegmentLift

    eff = Effects((SegmentLift("region", "eu", 0.2),), (Novelty("treatment", 0.6, 2.0),))
    bucket = np.array([0, 1, 1, 1, 1])
    region = np.array([1, 1, 0, 0, 1])  # eu is code 1
    age = np.array([0, 0, 0, 2, -1])
    lift = eff.user_lift(np.array([0.0, 0.1]), bucket, 0, {"region": region},
                         {"region": {"na": 0, "eu": 1}}, {"control": 0, "treatment": 1}, age)
    # control: 0; eu treatment at age 0: initial 0.6; na at age 0: 0.6; na at age 2:
    # 0.1 + 0.5 * 2**-1 = 0.35; eu not exposed yet: its segment lift 0.2.
    assert lift == pytest.approx([0.0, 0.6, 0.6, 0.35, 0.2])


def test_traffic_imbalance_limited_to_control(tmp_path, small: dict[str, Warehouse]) -> None:
    """Named arm: that arm's users lose their sessions, control included; the other arm's
    requests are those of the same run without the incident, row for row."""
    wh = synth(tmp_path / "wh", "--incident", "traffic_imbalance:control", **SMALL)
    default = small["default"]
    rows = "select * from read_parquet('{}/events/requests/*/*.parquet') where bucket = '{}'"
    diff = wh.df(f"""select (select count(*) from ({rows.format(wh.path, 'treatment')} except all
        {rows.format(default.path, 'treatment')})) + (select count(*) from
        ({rows.format(default.path, 'treatment')} except all {rows.format(wh.path, 'treatment')})) n""")
    assert diff.n[0] == 0
    users = "select count(distinct user_id) n from requests where bucket = 'control' and not shadow"
    kept, before = wh.df(users).n[0], default.df(users).n[0]
    # Each control user loses the day with probability 0.3 (dropped_user_share), independently:
    # kept ~ Binomial(before, 0.7).
    assert abs(kept - 0.7 * before) < Z * math.sqrt(0.21 * before), (kept, before)
    # The truth counts users whose sessions were dropped, shadow-only users too.
    assert wh.truth["incidents"][0]["injected"]["users_affected"] >= before - kept


def test_lift_names_some_arms_the_others_keep_the_default(tmp_path) -> None:
    params = tmp_path / "experiment.yaml"
    params.write_text(PARAMS.read_text().replace(
        "  control: 0.5\n  treatment: 0.5\n", "  control: 0.5\n  a: 0.25\n  b: 0.25\n"))
    code = main(["synth", "--out", str(tmp_path / "wh"), "--days", "1", "--end", END.isoformat(),
                 "--users", "50", "--params", str(params), "--quiet", "--lift", "a=0.2"])
    assert code == 0
    truth = json.loads((tmp_path / "wh" / "truth.json").read_text())
    assert truth["true_lift"] == {"a": 0.2, "b": 0.05}
