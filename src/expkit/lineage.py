"""What each derived artifact was built from, and when it is stale (see docs/architecture.md, "Lineage").

An artifact (a day's raw rollups, its outcome statistics, a report) records the fingerprint of
exactly the inputs it read: for every input partition (a folder of Parquet files named relative
to the warehouse root, e.g. ``rollups/user_day/event_date=2026-11-13``) the name, size and
modification time in nanoseconds of each of its files. An input the artifact expected but that
did not exist (a window day not rolled up yet) is recorded with no files. The one staleness rule:

* an artifact never built (no record) is stale;
* an artifact is stale when one of its recorded inputs changed, appeared or disappeared, or when
  one of its outputs is missing, or when a setting it was built with changed (the metric
  catalogue's definitions: :meth:`expkit.catalogue.Catalogue.facts_digest`);
* an artifact is stale when an input that is itself derived comes from a stale artifact
  (transitively: late data on day 1 makes the experiment-to-date statistics of every later day
  stale, even before day 1 is rebuilt). An input that was absent, is still absent and whose
  producer never ran is not a reason: the artifact read what exists.

Nanoseconds, not seconds: a file rewritten with the same size in the second of the build would
otherwise look unchanged. Records written before fingerprints held nanoseconds hold whole
seconds (< 10¹²) and are compared at that precision.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from expkit.atomic import atomic_write_json

Entry = list[Any]
"""``[file name, size in bytes, modification time in ns]``."""
Fingerprint = dict[str, list[Entry]]
"""Input partition (relative to the warehouse root) → entries of its files (empty: absent)."""

_SECONDS_BELOW = 10**12


def partition_files(folder: Path) -> list[Path]:
    """The Parquet files of a partition folder (sorted; hidden temp files skipped; none if absent)."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("*.parquet") if not p.name.startswith("."))


def fingerprint_files(paths: Iterable[Path]) -> list[Entry]:
    """Name, size and modification time (ns) of each file (a file gone meanwhile is left out)."""
    out = []
    for p in paths:
        try:
            st = p.stat()
        except OSError:
            continue
        out.append([p.name, st.st_size, st.st_mtime_ns])
    return out


def fingerprint(root: Path, inputs: Iterable[str]) -> Fingerprint:
    """The current fingerprint of each input partition under ``root`` (absent ones: no files)."""
    return {name: fingerprint_files(partition_files(root / name)) for name in inputs}


@dataclass(frozen=True)
class Change:
    """A file of an input that differs from the record: ``new``, ``changed`` or ``removed``."""

    input: str
    name: str
    change: str


def changes(recorded: Mapping[str, list[Entry]], current: Mapping[str, list[Entry]]) -> list[Change]:
    """Differences between a recorded and a current fingerprint of the same inputs."""
    out = []
    for key in recorded.keys() | current.keys():
        before = {str(e[0]): (int(e[1]), int(e[2])) for e in recorded.get(key, [])}
        now = {str(e[0]): (int(e[1]), int(e[2])) for e in current.get(key, [])}
        out += [Change(key, n, "new") for n in sorted(now.keys() - before.keys())]
        out += [Change(key, n, "removed") for n in sorted(before.keys() - now.keys())]
        for n in sorted(now.keys() & before.keys()):
            (size0, mtime0), (size1, mtime1) = before[n], now[n]
            if mtime0 < _SECONDS_BELOW:
                mtime1 //= 10**9
            if (size0, mtime0) != (size1, mtime1):
                out.append(Change(key, n, "changed"))
    return sorted(out, key=lambda c: (c.input, c.name))


def newest_ms(fp: Mapping[str, list[Entry]]) -> int | None:
    """The newest modification time in a fingerprint, in epoch ms (None: no files)."""
    return max((int(e[2]) // 10**6 for files in fp.values() for e in files), default=None)


@dataclass(frozen=True)
class Record:
    """What an artifact recorded when it was built.

    Attributes:
        inputs: the fingerprint of every input it read (expected but absent inputs: no files).
        missing_outputs: outputs that should exist but do not (e.g. a partition deleted since).
        built_at_ms: when it was built (wall clock).
        settings_changed: settings it was built with that differ now (e.g. ``metric catalogue``).
    """

    inputs: Fingerprint
    missing_outputs: tuple[str, ...] = ()
    built_at_ms: int | None = None
    settings_changed: tuple[str, ...] = ()


@dataclass(frozen=True)
class Staleness:
    """Whether an artifact is stale, and why.

    Attributes:
        artifact: its name.
        built: whether a record of it exists.
        changes: input files new, changed or removed since it was built.
        stale_inputs: derived inputs whose producing artifact is stale.
        missing_outputs: outputs that are gone.
        settings_changed: settings it was built with that differ now.
    """

    artifact: str
    built: bool
    changes: tuple[Change, ...] = ()
    stale_inputs: tuple[str, ...] = ()
    missing_outputs: tuple[str, ...] = ()
    settings_changed: tuple[str, ...] = ()

    @property
    def stale(self) -> bool:
        return not self.built or bool(self.changes or self.stale_inputs or self.missing_outputs
                                      or self.settings_changed)

    def reason(self) -> str:
        """One line saying why the artifact is stale (empty when it is not)."""
        if not self.built:
            return f"{self.artifact} was never built"
        parts = []
        if self.missing_outputs:
            parts.append(f"output(s) missing: {', '.join(self.missing_outputs)}")
        if self.changes:
            c = self.changes[0]
            parts.append(f"{len(self.changes)} input file(s) changed since the build, e.g. "
                         f"{c.input}/{c.name} ({c.change})")
        if self.settings_changed:
            parts.append(f"built with another {', '.join(self.settings_changed)}")
        if self.stale_inputs:
            parts.append(f"{len(self.stale_inputs)} input(s) come from stale artifacts, e.g. {self.stale_inputs[0]}")
        return "; ".join(parts)


@dataclass
class Graph:
    """The artifacts of a warehouse: how to load an artifact's record and who produces an input.

    Attributes:
        root: the warehouse root (input names are relative to it).
        load: artifact name → its :class:`Record` (None: never built).
        producer: input name → the artifact that writes it (None: a source, e.g. event files).
    """

    root: Path
    load: Callable[[str], Record | None]
    producer: Callable[[str], str | None]
    _memo: dict[str, Staleness] = field(default_factory=dict)
    _upstream: dict[str, set[str]] = field(default_factory=dict)

    def forget(self, artifacts: Iterable[str] | None = None) -> None:
        """Drop remembered verdicts (all, or those of ``artifacts`` and of whatever read them)."""
        if artifacts is None:
            self._memo.clear()
            return
        gone = set(artifacts)
        changed = True
        while changed:  # whatever read a forgotten artifact, directly or not, is forgotten too
            more = {a for a, ups in self._upstream.items() if ups & gone} - gone
            changed = bool(more)
            gone |= more
        for name in gone:
            self._memo.pop(name, None)
            self._upstream.pop(name, None)

    def staleness(self, artifact: str) -> Staleness:
        """Whether ``artifact`` is stale: the one rule of this module, applied transitively."""
        if artifact in self._memo:
            return self._memo[artifact]
        verdict = self.check(artifact, self.load(artifact))
        self._memo[artifact] = verdict
        return verdict

    def check(self, artifact: str, record: Record | None) -> Staleness:
        """The staleness of an artifact from its ``record`` (e.g. a report's, kept outside the graph)."""
        if record is None:
            verdict = Staleness(artifact, built=False)
        else:
            current = fingerprint(self.root, record.inputs)
            diff = changes(record.inputs, current)
            stale_inputs = []
            ups = self._upstream.setdefault(artifact, set())
            for name in sorted(record.inputs):
                up = self.producer(name)
                if up is not None and up != artifact:
                    ups.add(up)
                    verdict_up = self.staleness(up)
                    # an input still absent whose producer never ran is what was read: not stale
                    if verdict_up.stale and (verdict_up.built or current[name]):
                        stale_inputs.append(name)
            verdict = Staleness(artifact, True, tuple(diff), tuple(stale_inputs), tuple(record.missing_outputs),
                                tuple(record.settings_changed))
        return verdict


def write_inputs(path: Path, root: Path, inputs: Iterable[str], built_at_ms: int | None = None) -> None:
    """Record the current fingerprint of ``inputs`` at ``path`` (JSON, atomically), e.g. for a report."""
    atomic_write_json(path, {"built_at_ms": built_at_ms, "inputs": fingerprint(root, sorted(set(inputs)))})


def read_inputs(path: Path) -> Record | None:
    """The :class:`Record` written by :func:`write_inputs` (None: absent or unreadable)."""
    try:
        data = json.loads(path.read_text())
        return Record(inputs={str(k): list(v) for k, v in data["inputs"].items()}, built_at_ms=data.get("built_at_ms"))
    except (OSError, ValueError, KeyError, AttributeError):
        return None
