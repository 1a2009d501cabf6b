"""Several experiments at once (docs/synthetic.md, "Several experiments"): the same users,
randomized into each by a hash of (experiment id, user id), each with its own true lift.

Measured from the raw events with DuckDB: the exposures table lists every experiment of every
exposed user once a day, each user's arm is the one the documented hash gives (recomputed here
with hashlib), the arms of two experiments are independent, and each experiment's CTR lift,
measured over its own arms, is its planted one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import pytest
from scipy.stats import chi2_contingency
from synth_support import Warehouse
from test_synth_effects import Z, relative_lift

from expkit.cli import main

END = dt.date(2026, 11, 14)
DAYS = [END - dt.timedelta(days=1), END]
PARAMS = Path(__file__).resolve().parents[2] / "params" / "experiment.yaml"
pytestmark = pytest.mark.slow  # three days of 3000 users
A, B = "rec_ranker_v2", "rec_ranker_v2_2"
LIFT_A, LIFT_B = 0.0, 0.6  # far enough apart that 3,000 users over 2 days tell them apart (z ≈ 7)


@pytest.fixture(scope="module")
def two(tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    path = tmp_path_factory.mktemp("two") / "w"
    code = main(["synth", "--out", str(path), "--days", "2", "--end", END.isoformat(), "--users", "3000",
                 "--seed", "5", "--params", str(PARAMS), "--quiet", "--pre-days", "1", "--experiments", "2",
                 "--lift", f"treatment={LIFT_A}", "--lift", f"{B}/treatment={LIFT_B}"])
    assert code == 0
    wh = Warehouse(path, json.loads((path / "truth.json").read_text()))
    wh.con.execute(f"create view exposures as select * from read_parquet('{path}/events/exposures/*/*.parquet', "
                   "hive_partitioning = true)")
    return wh


def _arm(experiment: str, user_id: int) -> str:
    """The documented assignment: blake2b-64 of 'experiment:user' as a uniform against the shares (0.5, 0.5)."""
    u = int.from_bytes(hashlib.blake2b(f"{experiment}:{user_id}".encode(), digest_size=8).digest(), "big") / 2**64
    return "control" if u < 0.5 else "treatment"


def test_exposures_list_every_experiment_of_every_exposed_user(two: Warehouse) -> None:
    per_day = two.df("""
        select e.event_date, e.experiment_id, count(*) n, count(distinct e.user_id) users
        from exposures e group by all order by all""")
    seen = two.df("""select event_date, count(distinct user_id) users from requests where not shadow
                     group by all order by all""")
    assert sorted(per_day.experiment_id.unique()) == [A, B]
    assert (per_day.n == per_day.users).all()  # one row per user, experiment and day
    for _, row in seen.iterrows():
        assert (per_day[per_day.event_date == row.event_date].users == row.users).all()
    # no exposure on the pre-experiment day
    assert str(DAYS[0] - dt.timedelta(days=1)) not in {str(d) for d in per_day.event_date}


def test_arms_are_the_hash_of_experiment_and_user(two: Warehouse) -> None:
    rows = two.df("select distinct experiment_id, user_id, bucket from exposures")
    assert len(rows) == len(rows[["experiment_id", "user_id"]].drop_duplicates())  # stable across days
    expected = [_arm(e, int(u)) for e, u in zip(rows.experiment_id, rows.user_id, strict=True)]
    assert rows.bucket.tolist() == expected
    # requests and impressions carry the first experiment's arm
    req = two.df(f"""select count(*) n from (select distinct user_id, bucket from requests) r
                     join exposures x on x.user_id = r.user_id and x.experiment_id = '{A}'
                     where r.bucket <> x.bucket""")
    assert int(req.n[0]) == 0
    # independent randomization: the 2x2 table of arms has no association (chi-square, scipy)
    table = two.df(f"""select a.bucket ba, b.bucket bb, count(*) n from
        (select distinct user_id, bucket from exposures where experiment_id = '{A}') a
        join (select distinct user_id, bucket from exposures where experiment_id = '{B}') b using (user_id)
        group by all""").pivot(index="ba", columns="bb", values="n")
    assert chi2_contingency(table.to_numpy()).pvalue > 1e-3


@pytest.mark.parametrize(("experiment", "lift"), [(A, LIFT_A), (B, LIFT_B)])
def test_each_experiment_measures_its_own_lift(two: Warehouse, experiment: str, lift: float) -> None:
    truth = two.truth["experiments"][experiment]
    assert truth["true_lift"] == {"treatment": lift}
    assert truth["metric_lift"]["ctr"]["treatment"] == pytest.approx(lift, abs=1e-3)  # min(1, .) aside
    per_user = two.df(f"""
        with x as (select distinct user_id, bucket from exposures where experiment_id = '{experiment}'),
             i as (select user_id, count(*) den from (select distinct request_id, item_id, user_id from impressions
                   where not shadow and event_date in (select unnest($1::date[]))) group by 1),
             c as (select user_id, count(*) num from (select distinct click_id, user_id from clicks
                   where not shadow and event_date in (select unnest($1::date[]))) group by 1)
        select x.bucket, i.den, coalesce(c.num, 0) num from x join i using (user_id) left join c using (user_id)""",
                      [DAYS])
    measured = relative_lift(per_user)
    assert abs(measured.z(truth["metric_lift"]["ctr"]["treatment"])) < Z, measured
    assert abs(measured.z(LIFT_B if lift == LIFT_A else LIFT_A)) > Z, measured  # not the other's lift


def test_bad_experiments_are_refused_before_writing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "w"
    base = ["synth", "--out", str(out), "--days", "1", "--end", END.isoformat(), "--params", str(PARAMS)]
    assert main([*base, "--experiments", "2", "--lift", "nope/treatment=0.1"]) == 2
    assert "'nope' is not one of the other experiments" in capsys.readouterr().err
    assert main([*base, "--experiments", "2", "--segment-lift", "region=eu:0.1"]) == 2
    assert "without several experiments" in capsys.readouterr().err
    assert not out.exists()
