"""Experiment definitions (``params/<experiment>.yaml``), validated before anything runs.

Several experiments at once have one file each in ``params/experiments/``, checked together
(:func:`load_experiments`: docs/reports.md, "Several experiments").

A parameters file names the experiment, its buckets with planned allocation, the control
bucket, the metrics it reads (by id, from the metric catalogue ``metrics.yaml`` beside it:
:mod:`expkit.catalogue`), K for Top-K, the SLO thresholds, target overrides, and the windows
and slices offered.
Invalid files (unknown keys, allocations not summing to 1, unknown buckets, bad windows,
negative SLOs or targets, experiment ids or bucket names that could not be slice values,
malformed YAML, a key given twice, a metric id the catalogue does not define) raise
:class:`~expkit.errors.ConfigError` naming the file, key and reason. Allocations within
:data:`~expkit.shares.SHARE_SUM_TOLERANCE` of 1 are normalized to sum to 1.

>>> cfg = ExperimentConfig.model_validate({"experiment_id": "e1", "start_date": "2026-01-01",
...     "control": "a", "buckets": {"a": 0.5, "b": 0.5}})
>>> cfg.treatments
['b']
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from expkit.catalogue import Catalogue, Target, catalogue_file_for, catalogue_for
from expkit.errors import ConfigError
from expkit.names import WINDOWS
from expkit.project import EXPERIMENTS_DIR, project_root
from expkit.schema import SLICE_COLUMNS, SLICE_VALUE_CHARS, is_slice_value
from expkit.shares import normalized_shares, shares_sum_to_one
from expkit.yamlio import load_yaml_text, read_yaml


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]
"""A limit on a latency, a duration or a count: a finite number, 0 or more."""
Share = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
"""A limit on a rate or share: between 0 and 1."""


class Slos(_Strict):
    """Health SLO thresholds (docs/metrics.md, "SLOs and targets").

    None may be negative; rates and shares are at most 1.
    """

    latency_p95_warm_ms: NonNegative = 50.0
    latency_p95_cold_ms: NonNegative = 200.0
    latency_p95_alert_ms: NonNegative = 100.0
    coverage_min: Share = 0.95
    error_rate_max: Share = 0.001
    freshness_max_min: NonNegative = 15.0
    cache_hit_min: Share = 0.85
    topk_fill_min: Share = 0.99


class Targets(_Strict):
    """Target overrides (docs/metrics.md, "SLOs and targets"); none may be negative.

    A metric's target is its catalogue entry's (``target: {min: x}``); ``<metric>_min`` here,
    when given, overrides it for this experiment.
    """

    ctr_min: Share | None = None
    recall_min: Share | None = None
    session_depth_min: NonNegative | None = None
    save_rate_min: Share | None = None
    allocation_tolerance: NonNegative = 0.05


class Margin(_Strict):
    """A guardrail's non-inferiority margin (docs/readout.md, "Guardrails"): exactly one key.

    ``max_increase``/``max_decrease`` bound the absolute difference treatment − control (in the
    metric's unit), ``max_relative_increase``/``max_relative_decrease`` the relative lift.
    """

    max_increase: NonNegative | None = None
    max_decrease: NonNegative | None = None
    max_relative_increase: NonNegative | None = None
    max_relative_decrease: NonNegative | None = None

    @model_validator(mode="after")
    def _one(self) -> Margin:
        given = [k for k, v in self.model_dump().items() if v is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of {list(type(self).model_fields)} (got {given or 'none'})")
        return self

    @property
    def harm(self) -> str:
        """``increase`` or ``decrease``: the direction the margin guards against."""
        return "increase" if self.max_increase is not None or self.max_relative_increase is not None else "decrease"

    @property
    def relative(self) -> bool:
        """Whether the margin bounds the relative lift (else the absolute difference)."""
        return self.max_relative_increase is not None or self.max_relative_decrease is not None

    @property
    def value(self) -> float:
        """The margin's size (≥ 0)."""
        return float(next(v for v in self.model_dump().values() if v is not None))


DEFAULT_MARGINS = {
    "error_rate": Margin(max_increase=0.001),
    "latency_p95": Margin(max_relative_increase=0.10),
    "coverage": Margin(max_decrease=0.01),
}
"""Guardrail margins used when ``guardrails`` of the parameters file does not name the metric."""


class Cuped(_Strict):
    """Variance reduction with pre-experiment data (docs/statistics.md, CUPED)."""

    lookback_days: int = Field(default=14, ge=1, le=366)
    """Days before ``start_date`` whose per-user sums are the covariate."""


def _slice_value_problem(names: list[str], what: str) -> str | None:
    bad = [n for n in names if not is_slice_value(n)]
    if not bad:
        return None
    return f"{what} {bad[0]!r} may only contain {SLICE_VALUE_CHARS} (no quotes, control or bidi characters)"


class ExperimentConfig(_Strict):
    """One experiment, as read from its parameters file."""

    experiment_id: str = Field(min_length=1)
    start_date: dt.date
    end_date: dt.date | None = None
    """The experiment's last day (inclusive); ``None``: still running."""
    buckets: dict[str, float]
    control: str  # after buckets: its validator checks it against them
    primary_metric: str = "ctr"
    secondary_metrics: list[str] | None = None
    """Default: the catalogue's metrics with a tile page (other than the primary)."""
    guardrail_metrics: list[str] = Field(default_factory=list)
    top_k: int = Field(default=10, ge=1, le=1000)
    windows: list[str] = Field(default_factory=lambda: list(WINDOWS))
    slices: list[str] = Field(default_factory=lambda: list(SLICE_COLUMNS))
    srm_pvalue_threshold: float = Field(default=0.001, gt=0, lt=1)
    sequential_tuning_n: int = Field(default=5000, ge=1)
    """N* of the always-valid confidence sequences: the sample size where they are tightest."""
    mde: float = Field(default=0.05, gt=0, lt=10)
    """Relative minimum detectable effect of the primary metric (power 0.8): the readout's target sample."""
    min_days: int = Field(default=7, ge=1)
    """Days the experiment runs before a ``ship`` verdict (a full weekly cycle)."""
    guardrails: dict[str, Margin] = Field(default_factory=dict)
    """Margin per guardrail metric; others take :data:`DEFAULT_MARGINS`."""
    cuped: Cuped = Field(default_factory=Cuped)
    slos: Slos = Field(default_factory=Slos)
    targets: Targets = Field(default_factory=Targets)
    _catalogue: Catalogue | None = PrivateAttr(default=None)

    @field_validator("buckets")
    @classmethod
    def _allocation(cls, v: dict[str, float]) -> dict[str, float]:
        if len(v) < 2:
            raise ValueError("needs at least two buckets (a control and a treatment)")
        bad = [k for k, share in v.items() if not (0 < share < 1)]
        if bad:
            raise ValueError(f"allocation of {bad} must be between 0 and 1")
        problem = _slice_value_problem(list(v), "bucket name")
        if problem:
            raise ValueError(problem)
        total = math.fsum(v.values())
        if not shares_sum_to_one(total):
            raise ValueError(f"allocations sum to {total:.9g}; they must sum to 1")
        return normalized_shares(v)

    @field_validator("end_date")
    @classmethod
    def _end_after_start(cls, v: dt.date | None, info: ValidationInfo) -> dt.date | None:
        start = info.data.get("start_date")
        if v is not None and start is not None and v < start:
            raise ValueError(f"end_date {v} is before start_date {start}")
        return v

    @field_validator("experiment_id")
    @classmethod
    def _experiment_id(cls, v: str) -> str:
        problem = _slice_value_problem([v], "experiment_id")
        if problem:
            raise ValueError(problem)
        if not v.strip(". "):  # it names folders (reports/<date>/<id>/, the alert state): not '.' or '..'
            raise ValueError(f"experiment_id {v!r} needs a letter or digit")
        return v

    @field_validator("windows")
    @classmethod
    def _windows(cls, v: list[str]) -> list[str]:
        bad = [w for w in v if w not in WINDOWS]
        if bad:
            raise ValueError(f"unknown window(s) {bad}; choose from {list(WINDOWS)}")
        return v

    @field_validator("slices")
    @classmethod
    def _slices(cls, v: list[str]) -> list[str]:
        bad = [s for s in v if s not in SLICE_COLUMNS]
        if bad:
            raise ValueError(f"unknown slice(s) {bad}; choose from {list(SLICE_COLUMNS)}")
        return v

    @field_validator("control")
    @classmethod
    def _control_known(cls, v: str, info: ValidationInfo) -> str:
        buckets = info.data.get("buckets")
        if buckets is not None and v not in buckets:
            raise ValueError(f"control bucket {v!r} is not one of the buckets {list(buckets)}")
        return v

    def active_on(self, day: dt.date) -> bool:
        """Whether ``day`` is one of the experiment's days (``start_date`` .. ``end_date``)."""
        return self.start_date <= day and (self.end_date is None or day <= self.end_date)

    @property
    def treatments(self) -> list[str]:
        """Buckets other than the control, in file order."""
        return [b for b in self.buckets if b != self.control]

    @property
    def catalogue(self) -> Catalogue:
        """The metric catalogue: the one beside the parameters file (:func:`load_experiment`),
        else the project's ``params/metrics.yaml``."""
        return self._catalogue if self._catalogue is not None else catalogue_for(None)

    def with_catalogue(self, catalogue: Catalogue) -> ExperimentConfig:
        """This experiment reading its metrics from ``catalogue``."""
        out = self.model_copy()
        out._catalogue = catalogue
        return out

    @property
    def secondary(self) -> list[str]:
        """``secondary_metrics``, or by default the catalogue's tiled metrics other than the primary."""
        if self.secondary_metrics is not None:
            return list(self.secondary_metrics)
        return [m for m in self.catalogue.tile_ids if m != self.primary_metric]

    @property
    def outcome_metrics(self) -> list[str]:
        """The ratio metrics the experiment reads (primary, secondary, guardrails), in that order:
        what the lift and timeline tiles show."""
        cat = self.catalogue
        ids = [self.primary_metric, *self.secondary, *self.guardrail_metrics]
        return [m for m in dict.fromkeys(ids) if m in cat and cat[m].kind == "ratio"]

    def margin(self, metric: str) -> Margin | None:
        """The guardrail margin of ``metric``: ``guardrails.<metric>``, else the default, else ``None``."""
        return self.guardrails.get(metric) or DEFAULT_MARGINS.get(metric)

    def target(self, metric: str) -> Target | None:
        """The target of ``metric``: ``targets.<metric>_min`` when set, else the catalogue's."""
        override = getattr(self.targets, f"{metric}_min", None)
        if override is not None:
            return Target(min=float(override))
        return self.catalogue[metric].target if metric in self.catalogue else None


def _format_validation_error(path: Path | str, err: ValidationError) -> str:
    parts = []
    for e in err.errors():
        loc = ".".join(str(x) for x in e["loc"]) or "(top level)"
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling; see params/experiment.yaml for the known keys)"
        parts.append(f"key '{loc}': {msg}")
    return f"{path}: " + "; ".join(parts)


def check_metric_ids(cfg: ExperimentConfig, source: Path | str = "<parameters>") -> None:
    """Raise :class:`ConfigError` naming ``source`` and the id when the experiment names a metric
    its catalogue does not define (primary and secondary metrics must be ratio metrics)."""
    cat = cfg.catalogue
    named = [("primary_metric", [cfg.primary_metric]), ("secondary_metrics", cfg.secondary_metrics or []),
             ("guardrail_metrics", cfg.guardrail_metrics)]
    for key, ids in named:
        for mid in ids:
            if mid not in cat:
                raise ConfigError(f"{source}: key '{key}': unknown metric {mid!r}; the catalogue {cat.source} "
                                  f"defines {', '.join(cat.metrics)} (add an entry there)")
            if key != "guardrail_metrics" and cat[mid].kind != "ratio":
                raise ConfigError(f"{source}: key '{key}': {mid!r} is a health metric; an outcome metric is one of "
                                  f"{', '.join(cat.ratio_ids)} (health metrics go in guardrail_metrics)")
    for mid in cfg.guardrails:
        if mid not in cfg.guardrail_metrics:
            raise ConfigError(f"{source}: key 'guardrails.{mid}': {mid!r} is not in guardrail_metrics "
                              f"({', '.join(cfg.guardrail_metrics) or 'empty'}); add it there or remove its margin")


def parse_experiment(
    data: Any, source: Path | str = "<parameters>", catalogue: Catalogue | None = None
) -> ExperimentConfig:
    """Validate an already-parsed mapping against ``catalogue`` (default: the project's);
    errors name ``source`` and the key."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of keys to values, got {type(data).__name__}")
    try:
        cfg = ExperimentConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_format_validation_error(source, err)) from None
    if catalogue is not None:
        cfg._catalogue = catalogue
    check_metric_ids(cfg, source)
    return cfg


def load_experiment(path: str | Path) -> ExperimentConfig:
    """Read and validate an experiment parameters file with its metric catalogue
    (:func:`expkit.catalogue.catalogue_for`: ``metrics.yaml`` beside it, else the project's).

    Validated once per content of the two files (the result is frozen): the live tier asks for
    it once per tile every minute."""
    try:
        text = Path(path).read_text(encoding="utf-8")
        catalogue = catalogue_file_for(path)
        catalogue_text = catalogue.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):  # reading it again says what is wrong
        return _parse_experiment_text(str(path), None)
    return _load_experiment(str(path), text, str(catalogue), catalogue_text)


@functools.lru_cache(maxsize=8)
def _load_experiment(path: str, text: str, catalogue: str, catalogue_text: str) -> ExperimentConfig:
    return _parse_experiment_text(path, text)


def _parse_experiment_text(path: str, text: str | None) -> ExperimentConfig:
    data = read_yaml(path, "parameters file", "params/experiment.yaml") if text is None else load_yaml_text(text, path)
    return parse_experiment(data, path, catalogue_for(path))


def default_params_file() -> Path:
    """``params/experiment.yaml`` of the working folder, else of the project root above it
    (:func:`expkit.project.project_root`), else of the checkout expkit runs from."""
    here = Path(__file__).resolve()
    root = project_root()
    for parent in [Path.cwd(), *([root] if root else []), *here.parents]:
        candidate = parent / "params" / "experiment.yaml"
        if candidate.is_file():
            return candidate
    return Path("params/experiment.yaml")


SHARED_FILES = ("metrics.yaml", "alerts.yaml", "notify.yaml")
"""Files beside the parameters that are not experiments (the catalogue, alert rules, digest targets)."""


def experiment_files(params: str | Path) -> list[Path]:
    """The parameters files of the experiments: ``params`` itself when it is a file; for a folder,
    its ``experiments/*.yaml`` (sorted by name) when there are any, else its ``experiment.yaml``
    (a folder's :data:`SHARED_FILES` are not experiments)."""
    path = Path(params)
    if path.is_file():
        return [path]
    folder = path / EXPERIMENTS_DIR if (path / EXPERIMENTS_DIR).is_dir() else path
    found = sorted(f for f in folder.glob("*.yaml") if f.name not in SHARED_FILES)
    if folder != path and found:
        return found
    single = path / "experiment.yaml"
    return [single] if single.is_file() else found


def portfolio_files(params: str | Path) -> list[Path] | None:
    """The parameters files of a setup with several experiments: ``params`` is a folder and
    :func:`experiment_files` finds them in its ``experiments/`` (or it is such a folder itself);
    ``None`` for a single-experiment setup (a parameters file, or a folder with its
    ``experiment.yaml`` alone). Such a setup gets the portfolio layout of the daily report
    (docs/reports.md, "The portfolio"), even with one file."""
    path = Path(params)
    if not path.is_dir():
        return None
    files = experiment_files(path)
    return None if files == [path / "experiment.yaml"] or not files else files


def default_params() -> Path:
    """What ``expkit daily`` reads without ``--params``: the first ``params/`` folder, where
    :func:`default_params_file` looks, with an ``experiments/`` folder of parameters files (several
    experiments) or an ``experiment.yaml`` (then that file); else :func:`default_params_file`."""
    here = Path(__file__).resolve()
    root = project_root()
    for parent in [Path.cwd(), *([root] if root else []), *here.parents]:
        folder = parent / "params"
        if portfolio_files(folder):
            return folder
        if (folder / "experiment.yaml").is_file():
            return folder / "experiment.yaml"
    return default_params_file()


def _ranges_overlap(a: ExperimentConfig, b: ExperimentConfig) -> bool:
    far = dt.date.max
    return a.start_date <= (b.end_date or far) and b.start_date <= (a.end_date or far)


def check_portfolio(experiments: list[tuple[Path, ExperimentConfig]]) -> None:
    """Raise :class:`ConfigError` naming both files when two experiments share an id (saying so
    when their date ranges overlap), give one bucket name different shares, or differ in a setting
    of the shared rollups (``top_k``, ``cuped.lookback_days``)."""
    seen: dict[str, tuple[Path, ExperimentConfig]] = {}
    shares: dict[str, tuple[Path, float]] = {}
    for path, cfg in experiments:
        if cfg.experiment_id in seen:
            other, first = seen[cfg.experiment_id]
            overlap = " and their date ranges overlap" if _ranges_overlap(first, cfg) else ""
            raise ConfigError(f"{path}: key 'experiment_id': {cfg.experiment_id!r} is also the id of {other}"
                              f"{overlap}; give each experiment its own id")
        seen[cfg.experiment_id] = (path, cfg)
        for bucket, share in cfg.buckets.items():
            if bucket in shares and not math.isclose(shares[bucket][1], share, abs_tol=1e-9):
                other, was = shares[bucket]
                raise ConfigError(f"{path}: key 'buckets.{bucket}': share {share:g} differs from {was:g} in {other}; "
                                  f"a bucket name has one share in every experiment (rename one of them)")
            shares.setdefault(bucket, (path, share))
    for path, cfg in experiments[1:]:
        first_path, first = experiments[0]
        for key, mine, theirs in (("top_k", cfg.top_k, first.top_k),
                                  ("cuped.lookback_days", cfg.cuped.lookback_days, first.cuped.lookback_days)):
            if mine != theirs:
                raise ConfigError(f"{path}: key '{key}': {mine} differs from {theirs} in {first_path}; the rollups "
                                  f"are shared by every experiment, so give all the same {key}")


def load_experiments(params: str | Path) -> list[ExperimentConfig]:
    """Every experiment of ``params`` (a parameters file, or a ``params/`` folder: :func:`experiment_files`),
    each validated (:func:`load_experiment`) and then checked together (:func:`check_portfolio`)."""
    if not Path(params).exists():
        raise ConfigError(f"{params}: parameters file not found; pass --params with an experiment.yaml "
                          f"or a folder holding {EXPERIMENTS_DIR}/<experiment>.yaml")
    files = experiment_files(params)
    if not files:
        raise ConfigError(f"{params}: no parameters file (add {EXPERIMENTS_DIR}/<experiment>.yaml or experiment.yaml)")
    loaded = [(f, load_experiment(f)) for f in files]
    check_portfolio(loaded)
    return [cfg for _, cfg in loaded]


def experiment_file(params: str | Path, experiment: str | None = None) -> Path:
    """The parameters file of one experiment of ``params``: a parameters file itself (``experiment``,
    when given, must be its id); in a folder of several (:func:`portfolio_files`), the file of the
    experiment whose id is ``experiment``. A missing or unknown id raises :class:`ConfigError`
    naming the folder and its ids."""
    files = portfolio_files(params)
    if files is None:
        path = Path(params) / "experiment.yaml" if Path(params).is_dir() else Path(params)
        own = load_experiment(path).experiment_id
        if experiment is not None and experiment != own:
            raise ConfigError(f"--experiment {experiment!r}: {path} defines {own!r} alone; several experiments "
                              f"are one file each in a folder (--params params, with params/experiments/<id>.yaml)")
        return path
    by_id = dict(zip((c.experiment_id for c in load_experiments(params)), files, strict=True))
    if experiment is None:
        raise ConfigError(f"{params} holds several experiments ({', '.join(by_id)}); choose one with --experiment ID")
    if experiment not in by_id:
        raise ConfigError(f"--experiment {experiment!r}: no experiment has that id in {params} "
                          f"(experiments: {', '.join(by_id)}); give one of them or add its file there")
    return by_id[experiment]


def active_experiments(experiments: list[ExperimentConfig], day: dt.date) -> list[ExperimentConfig]:
    """The experiments running on ``day`` (:meth:`ExperimentConfig.active_on`), in the given order."""
    return [cfg for cfg in experiments if cfg.active_on(day)]


def rollup_config(experiments: list[ExperimentConfig]) -> ExperimentConfig:
    """The experiment settings the rollups of several experiments use: the first one's, starting at the
    earliest ``start_date`` (windows and the CUPED pre-period are clipped there; each experiment's rows
    begin with its own exposures, docs/metrics.md, "Several experiments"). One experiment: itself."""
    first = experiments[0]
    start = min(cfg.start_date for cfg in experiments)
    return first if start == first.start_date else first.model_copy(update={"start_date": start})
