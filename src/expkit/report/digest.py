"""The digest of one experiment's day: a short message for stakeholders, built from
``summary.json`` alone (docs/reports.md, "Digests").

It says the verdict and its reasons, the primary lift with its interval, the guardrails, the
progress towards the required sample, the day's alerts and what failed, and links to the report.
One :class:`Digest` gives every form it is delivered in: plain text, HTML (e-mail and
``digest.html``), and a Slack-compatible webhook payload (``text`` plus ``blocks``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from expkit.atomic import atomic_write_text
from expkit.report.brief import Guardrail, ReportBrief, decided, interval, label, lift_text, pct
from expkit.report.html import jinja_env

TEXT_FILE, HTML_FILE = "digest.txt", "digest.html"
_SLACK_SECTION_MAX = 3000  # Slack's limit on a section block's text


@dataclass(frozen=True)
class Digest:
    """One experiment's digest of one day.

    Attributes:
        brief: what the day's ``summary.json`` says (:func:`expkit.report.brief.brief`).
        link: where the report's index page is read (a URL under ``notify.yaml``'s
            ``report_url``, else a ``file://`` URI).
    """

    brief: ReportBrief
    link: str

    @property
    def subject(self) -> str:
        """``rec_ranker_v2 · 2026-11-14: Keep running`` (the e-mail subject, the text's first line)."""
        return f"{self.brief.experiment_id} · {self.brief.date}: {self.brief.verdict_label}"

    def message_id(self, target: str) -> str:
        """A stable id of this digest sent to ``target`` (the same on every run)."""
        key = json.dumps([self.brief.experiment_id, self.brief.date, target])
        return hashlib.sha256(key.encode("utf-8")).hexdigest()[:24]

    def lines(self) -> list[str]:
        """The body, one line per fact (plain text, no markup)."""
        b = self.brief
        what = "Verdict" if b.verdict_source == "decision" else "Report status (no verdict in this report)"
        out = [f"{what}: {b.verdict_label}"]
        out += [f"  - {r}" for r in b.reasons]
        for arm in b.arms:
            if len(b.arms) > 1 or arm.reasons != b.reasons:
                why = f" ({'; '.join(arm.reasons)})" if arm.reasons else ""
                out.append(f"  {arm.arm}: {label(arm.verdict)}{why}")
        out.append("Primary lift:" if b.lifts else "Primary lift: not available in this report")
        out += [f"  {lift_text(lift)}" for lift in b.lifts]
        if b.guardrails:
            out.append("Guardrails:")
            out += [f"  {g.arm}: {g.metric} {g.status} (estimate {est}, interval {between}, margin {margin})"
                    for g in b.guardrails for est, between, margin in [guardrail_values(g)]]
        if b.progress is not None:
            out.append(f"Progress: {_progress_text(b)}")
        failed_gates = [g for g in b.trust if g.status == "fail"]
        if failed_gates:
            out.append("Trust gates failed: " + "; ".join(f"{g.gate} ({g.detail})" if g.detail else g.gate
                                                          for g in failed_gates))
        if b.alerts:
            out.append(f"Alerts of the day ({len(b.alerts)}):")
            out += [f"  {a.severity} {a.rule}: {a.state}" + (f", fired {a.fired_at}" if a.fired_at else "")
                    + (f", kill switch: {a.kill_switch}" if a.kill_switch else "") for a in b.alerts]
        else:
            out.append("Alerts of the day: none")
        problems = ([f"{len(b.failed_tiles)} tile(s) failed: {', '.join(b.failed_tiles)}"] if b.failed_tiles else [])
        problems += [f"{len(b.failed_checks)} validation check(s) failed: {', '.join(b.failed_checks)}"]\
            if b.failed_checks else []
        problems += [f"step {k} failed: {v}" for k, v in b.step_errors.items()]
        if problems:
            out.append("Problems: " + "; ".join(problems))
        out.append(f"Report: {self.link}")
        return out

    def text(self) -> str:
        """The plain-text digest (``digest.txt``, the e-mail's text part)."""
        return "\n".join([f"expkit digest: {self.subject}", "", *self.lines()]) + "\n"

    def html(self) -> str:
        """The HTML digest (``digest.html``, the e-mail's HTML part): styles inline, no script."""
        b = self.brief
        return jinja_env().get_template("digest.html.j2").render(
            d=self, b=b, lift_text=lift_text, pct=pct, interval=interval, num=_num, label=label,
            guardrail_values=guardrail_values,
            progress=_progress_text(b) if b.progress is not None else None,
            failed_gates=[g for g in b.trust if g.status == "fail"],
        )

    def slack_payload(self) -> dict[str, Any]:
        """A Slack-compatible webhook body: ``text`` (the notification's fallback) and ``blocks``."""
        b = self.brief
        body = "\n".join(_slack_escape(line) for line in self.lines()[:-1])
        if len(body) > _SLACK_SECTION_MAX:
            body = body[: _SLACK_SECTION_MAX - 1] + "\u2026"
        headline = f"{self.subject}" + (f": {pct(b.lifts[0].rel_lift)} {b.lifts[0].metric}" if b.lifts else "")
        return {
            "text": headline,
            "blocks": [
                {"type": "header", "text": {"type": "plain_text", "text": self.subject[:150]}},
                {"type": "section", "text": {"type": "mrkdwn", "text": body}},
                {"type": "context", "elements": [
                    {"type": "mrkdwn", "text": f"<{self.link}|Open the report of {b.date}>"}]},
            ],
        }


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def guardrail_values(g: Guardrail) -> tuple[str, str, str]:
    """A guardrail's estimate, interval and margin as the index page shows them: a relative one
    (latency p95) in percent with "relative" after its margin, an absolute one as numbers."""
    if g.relative:
        return pct(g.estimate), interval(g.low, g.high), f"{pct(g.margin)} relative"
    return _num(g.estimate), f"{_num(g.low)} to {_num(g.high)}", _num(g.margin)


def _progress_text(b: ReportBrief) -> str:
    p = b.progress
    if p is None:
        return ""
    parts = []
    if p.fraction is not None:
        parts.append(f"{p.fraction * 100:.0f}% of the required sample")
    if p.required_per_arm is not None:
        parts.append(f"{p.required_per_arm:,.0f} users per arm needed")
    if p.users:
        parts.append("users " + ", ".join(f"{arm} {n:,}" for arm, n in p.users.items()))
    if p.days_run is not None:
        parts.append(f"day {p.days_run:.0f}" + (f" of at least {p.min_days:.0f}" if p.min_days is not None else ""))
    if decided(a.verdict for a in b.arms):
        parts.append("decided: no more days needed")
    elif p.days_remaining is not None:
        parts.append(f"about {p.days_remaining:.0f} more day(s)")
    return "; ".join(parts) or "n/a"


def _slack_escape(text: str) -> str:
    """Slack's three control characters in mrkdwn text."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def write_digest_files(folder: Path, digest: Digest) -> tuple[Path, Path]:
    """Write ``digest.txt`` and ``digest.html`` into ``folder``, each atomically."""
    return (atomic_write_text(Path(folder) / TEXT_FILE, digest.text()),
            atomic_write_text(Path(folder) / HTML_FILE, digest.html()))
