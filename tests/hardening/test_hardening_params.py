"""Invalid parameters files, through the real command line: exit 2, one line naming the file
and the key, nothing written (docs/reliability.md, "Parameters files")."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hardening_support import END, PARAMS, Cli, assert_one_line_error, snapshot

GOOD = yaml.safe_load(PARAMS.read_text())

# name → (file text, what the error must say)
BAD_FILES: dict[str, tuple[str, str]] = {
    "unknown key": (yaml.safe_dump({**GOOD, "colour": "blue"}), "key 'colour': unknown key"),
    "nested unknown key": (yaml.safe_dump({**GOOD, "slos": {"latency_p95": 5}}), "key 'slos.latency_p95'"),
    "wrong type": (yaml.safe_dump({**GOOD, "top_k": "ten"}), "key 'top_k'"),
    "not a date": (yaml.safe_dump({**GOOD, "start_date": "2026-02-30"}), "key 'start_date'"),
    "allocations sum to 1.1": (yaml.safe_dump({**GOOD, "buckets": {"control": 0.5, "treatment": 0.6}}),
                               "key 'buckets': allocations sum to 1.1"),
    "unknown control": (yaml.safe_dump({**GOOD, "control": "baseline"}), "key 'control': control bucket 'baseline'"),
    "window typo": (yaml.safe_dump({**GOOD, "windows": ["24h", "7days"]}),
                    "key 'windows': unknown window(s) ['7days']"),
    "malformed YAML": ("experiment_id: x\nbuckets: {control: 0.5\n", "malformed YAML at line"),
    "not a mapping": ("- control\n- treatment\n", "expected a mapping"),
    "empty file": ("", "expected a mapping"),
}


def _argv(command: str, wh: Path, out: Path, params: Path) -> list[str | Path]:
    common = ["--warehouse", wh, "--date", END.isoformat(), "--params", params, "--quiet"]
    return {
        "daily": ["daily", *common, "--out", out],
        "tile": ["tile", "ctr", *common, "--out", out],
        "rollup": ["rollup", *common],
    }[command]


@pytest.mark.parametrize("command", ["daily", "tile", "rollup"])
@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_params_file_is_rejected_before_anything_runs(
    base_wh: Path, tmp_path: Path, cli: Cli, command: str, case: str
) -> None:
    text, expected = BAD_FILES[case]
    params = tmp_path / "experiment.yaml"
    params.write_text(text)
    out = tmp_path / "reports"
    before = snapshot(base_wh)
    code, _, err = cli(*_argv(command, base_wh, out, params))
    assert_one_line_error(code, err, params, expected)
    assert not out.exists()
    assert snapshot(base_wh) == before


def test_missing_params_file(base_wh: Path, tmp_path: Path, cli: Cli) -> None:
    missing = tmp_path / "nope.yaml"
    code, _, err = cli(*_argv("rollup", base_wh, tmp_path / "r", missing))
    assert_one_line_error(code, err, missing, "not found")
