"""Synthetic warehouse generator: events with known truth and injected incidents.

``generate(out, days, end, ...)`` writes ``out/events/<table>/event_date=D/*.parquet`` with
exactly the schemas of :mod:`expkit.schema`, and ``out/truth.json``. The model
(:class:`Model`, defaults chosen to meet every SLO and target of docs/metrics.md):

- users are randomized once into arms by the planned allocation; each has a fixed cohort
  (new/casual/power), region and client, a Gamma activity (sessions per day) and Beta
  click/save/play propensities, so clicks cluster by user;
- sessions follow an hourly traffic curve (night trough, evening peak) and cross midnight;
  each has ~14 requests of k = 10 items (distinct, Zipf popularity), latency lognormal and
  much faster on a cache hit (~95%), rare short responses, errors at 1e-5;
- clicks and saves are Bernoulli per impression with probability
  ``p_user * position**-0.5 * (1 + lift)``; ~30% of clicks lead to a rec play; search,
  browse and continue plays come on top. Healthy daily values: CTR ~3.2%, save rate ~0.6%,
  Recall@10 ~0.31, session depth ~7.8;
- a share of sessions (2%) is shadow traffic; ingest delay is lognormal (median 20 s).

Incidents (``INCIDENTS``, specs ``NAME@HH:MM/MINUTES[:ARM]`` on the last day) change only the
events inside their window (of the users of ``ARM`` when given), drawing from their own random
streams. Planted effects beyond the per-arm ``lift`` (:mod:`expkit.synth.effects`,
docs/synthetic.md): pre-experiment days, segment lifts and a novelty effect. Same arguments
give byte-identical rows.

>>> from expkit.synth import INCIDENTS, parse_incident
>>> parse_incident("error_burst@16:00/20").minutes
20
>>> len(INCIDENTS)
10
"""

from importlib import import_module
from typing import Any

from expkit.synth.incidents import INCIDENTS, Incident, IncidentInfo, parse_incident

# The generator (numpy, pyarrow) loads on first use, so that the incident names stay cheap to
# import (``expkit --help`` lists them).
_LAZY = {"Model": "expkit.synth.model", "SynthConfig": "expkit.synth.warehouse", "generate": "expkit.synth.warehouse",
         "Novelty": "expkit.synth.effects", "SegmentLift": "expkit.synth.effects"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'expkit.synth' has no attribute {name!r}")


__all__ = ["INCIDENTS", "Incident", "IncidentInfo", "Model", "Novelty", "SegmentLift", "SynthConfig",
           "generate", "parse_incident"]
