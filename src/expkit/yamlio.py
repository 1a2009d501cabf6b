"""The one YAML loader of expkit: safe, and strict about duplicate keys.

PyYAML keeps the last of two equal keys in a mapping without a word, so a parameters or
rules file with ``buckets:`` twice silently loses the first. Every YAML expkit reads (the
experiment parameters, ``alerts.yaml``, rule test files, the ``filters`` tile parameter)
goes through :class:`StrictLoader`, which refuses a duplicate key naming it and its lines.

>>> load_yaml_text("a: 1\\nb: 2\\n")
{'a': 1, 'b': 2}
>>> load_yaml_text("a: 1\\nb: 2\\na: 3\\n", "x.yaml")
Traceback (most recent call last):
...
expkit.errors.ConfigError: x.yaml: duplicate key 'a' at line 3, column 1 (first at line 1); keep one of them
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import ConstructorError

from expkit.errors import ConfigError


class DuplicateKeyError(ConstructorError):
    """A mapping has the same key twice (``problem_mark`` points at the second)."""

    def __init__(self, key: Any, first: yaml.Mark, second: yaml.Mark) -> None:
        super().__init__(None, None, f"duplicate key {key!r} (first at line {first.line + 1})", second)
        self.key, self.first, self.second = key, first, second


class StrictLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that raises :class:`DuplicateKeyError` on a repeated mapping key."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, yaml.Mark] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # '<<' merges may be overridden by design
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.setdefault(key, key_node.start_mark)
            except TypeError:  # an unhashable key: the base constructor reports it
                continue
            if first is not key_node.start_mark:
                raise DuplicateKeyError(key, first, key_node.start_mark)
        return super().construct_mapping(node, deep=deep)


def yaml_error_text(err: yaml.YAMLError) -> str:
    """One line describing a YAML error: where and what (duplicate keys by name and both lines)."""
    mark = getattr(err, "problem_mark", None)
    if isinstance(err, DuplicateKeyError):
        return (f"duplicate key {err.key!r} at line {err.second.line + 1}, column {err.second.column + 1} "
                f"(first at line {err.first.line + 1}); keep one of them")
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    return f"malformed YAML{where}: {getattr(err, 'problem', None) or err}"


def load_yaml_text(text: str | bytes, source: Path | str = "<yaml>") -> Any:
    """Parse YAML ``text`` strictly; errors are a :class:`ConfigError` naming ``source``."""
    try:
        return yaml.load(text, Loader=StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as err:
        raise ConfigError(f"{source}: {yaml_error_text(err)}") from None


def read_yaml(path: str | Path, what: str, example: str) -> Any:
    """Parse a YAML file strictly; a missing file, malformed YAML or a duplicate key is a
    :class:`ConfigError` naming the file (and the line and column), ``what`` it should be and an
    ``example`` path."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{what} {path} not found; pass an existing YAML file (e.g. {example})")
    return load_yaml_text(path.read_text(encoding="utf-8"), path)
