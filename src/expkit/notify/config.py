"""``params/notify.yaml``: where the daily digests go (docs/reports.md, "notify.yaml reference").

A strict schema: an unknown key, a missing one, a credential written into the file or a bad
value is a :class:`~expkit.errors.ConfigError` naming the file, the target and the key (exit 2,
before the daily job runs anything). Credentials and webhook URLs (which carry a token) are read
from environment variables that the file names, never from the file.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from expkit.alerts.rules import Duration
from expkit.errors import ConfigError

NOTIFY_FILE = "notify.yaml"
_ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
_SECRET_KEYS = {"url": "url_env", "password": "password_env", "username": "username_env", "user": "username_env",
                "token": "url_env", "webhook_url": "url_env"}
_ADDRESS = re.compile(r"^[^@\s<>]+@[^@\s<>]+$|^[^<>]*<[^@\s<>]+@[^@\s<>]+>$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _no_credentials(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key, env_key in _SECRET_KEYS.items():
                if key in data and env_key in cls.model_fields:
                    raise ValueError(f"'{key}' must not be written in the file: put it in an environment variable "
                                     f"and name that variable with '{env_key}'")
        return data


EnvName = Annotated[str, Field(pattern=_ENV_NAME)]


class _Target(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    experiments: tuple[str, ...] | None = None
    """Experiment ids whose digests go to this target (default: every experiment)."""
    timeout: Duration = Field(default=10_000)
    retries: int = Field(default=3, ge=0, le=10)
    backoff: Duration = Field(default=1_000)

    def wants(self, experiment_id: str) -> bool:
        """Whether this target receives ``experiment_id``'s digests."""
        return self.experiments is None or experiment_id in self.experiments


class WebhookTarget(_Target):
    """A Slack-compatible incoming webhook (JSON with ``text`` and ``blocks``)."""

    type: Literal["webhook"]
    url_env: EnvName

    def missing_env(self) -> list[str]:
        """The environment variables this target needs that are unset."""
        return [] if os.environ.get(self.url_env) else [self.url_env]


class EmailTarget(_Target):
    """E-mail over SMTP: a plain-text and an HTML part."""

    type: Literal["email"]
    host: str = Field(min_length=1)
    port: int | None = Field(default=None, ge=1, le=65535)
    security: Literal["starttls", "ssl", "none"] = "starttls"
    username_env: EnvName | None = None
    password_env: EnvName | None = None
    sender: str = Field(alias="from")
    to: tuple[str, ...] = Field(min_length=1)
    cc: tuple[str, ...] = ()
    subject_prefix: str = "[expkit]"

    @model_validator(mode="after")
    def _check(self) -> EmailTarget:
        if (self.username_env is None) != (self.password_env is None):
            raise ValueError("give both username_env and password_env (SMTP login), or neither")
        for address in (self.sender, *self.to, *self.cc):
            if not _ADDRESS.match(address):
                raise ValueError(f"{address!r} is not an e-mail address (write name@example.com)")
        return self

    @property
    def smtp_port(self) -> int:
        """``port``, else the usual port of ``security`` (587 STARTTLS, 465 SSL, 25 none)."""
        return self.port or {"starttls": 587, "ssl": 465, "none": 25}[self.security]

    def missing_env(self) -> list[str]:
        """The environment variables this target needs that are unset."""
        return [v for v in (self.username_env, self.password_env) if v and not os.environ.get(v)]


Target = Annotated[WebhookTarget | EmailTarget, Field(discriminator="type")]


class NotifyConfig(_Strict):
    """The whole ``notify.yaml``."""

    version: Literal[1] = 1
    report_url: str | None = None
    """Base URL where the report folder is served (links in the digests); ``None``: ``file://`` links."""
    targets: tuple[Target, ...] = ()

    @model_validator(mode="after")
    def _check(self) -> NotifyConfig:
        if self.report_url is not None and not re.match(r"^https?://", self.report_url):
            raise ValueError(f"report_url {self.report_url!r} must start with http:// or https://")
        names = [t.name for t in self.targets]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"target name {twice[0]!r} is used twice; give each target its own name")
        return self


def default_notify_file(params_file: str | Path) -> Path:
    """``notify.yaml`` beside the experiment parameters file, or above an ``experiments/`` folder
    (:func:`expkit.project.shared_file`)."""
    from expkit.project import shared_file

    return shared_file(params_file, NOTIFY_FILE)


def parse_notify(data: Any, source: Path | str = "<notify>") -> NotifyConfig:
    """Validate an already-parsed ``notify.yaml``; errors name ``source``, the target and the key."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping with 'targets', got {type(data).__name__}")
    try:
        return NotifyConfig.model_validate(data)
    except ValidationError as err:
        parts = []
        for e in err.errors():
            loc = [str(x) for x in e["loc"] if x not in ("webhook", "email")]
            if len(loc) >= 2 and loc[0] == "targets" and loc[1].isdigit():
                i = int(loc[1])
                name = data["targets"][i].get("name") if isinstance(data.get("targets"), list) and isinstance(
                    data["targets"][i], dict) else None
                loc = [f"targets[{i}]" + (f" ({name})" if name else ""), *loc[2:]]
            msg = e["msg"].removeprefix("Value error, ")
            if e["type"] == "extra_forbidden":
                msg = "unknown key (check the spelling; see docs/reports.md, notify.yaml reference)"
            elif e["type"] == "union_tag_invalid" or e["type"] == "union_tag_not_found":
                msg = "needs 'type: webhook' or 'type: email'"
            elif e["type"] == "missing":
                msg = "missing (required)"
            parts.append(f"{'.'.join(loc) or 'file'}: {msg}")
        raise ConfigError(f"{source}: " + "; ".join(parts)) from None


def load_notify(path: str | Path) -> NotifyConfig:
    """Read and validate a ``notify.yaml``."""
    from expkit.yamlio import read_yaml

    return parse_notify(read_yaml(path, "notify file", "params/notify.yaml"), Path(path))


def load_notify_for(params_file: str | Path) -> NotifyConfig | None:
    """The ``notify.yaml`` beside ``params_file``; ``None`` when there is none (no digest is sent)."""
    path = default_notify_file(params_file)
    return load_notify(path) if path.is_file() else None
