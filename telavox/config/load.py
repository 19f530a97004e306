"""TOML text to :class:`~telavox.config.model.Config`, with errors a person can act on.

Owns the conversion from parsed TOML to the attrs records of
:mod:`telavox.config.model`: every key is checked against the record's fields
(unknown keys are errors, so typos do not pass silently), every value against
the field's type and validators, and every error names the file, the dotted
key and what is wrong (:class:`ConfigError`).
"""

from __future__ import annotations

import tomllib
import types
import typing
from importlib import resources
from pathlib import Path
from typing import Any

import attrs

from telavox.config.model import Config
from telavox.transport.address import AddressError, ListenAddress

__all__ = ["ConfigError", "load_config", "load_default", "parse_config"]

DEFAULT_NAME = "<embedded default>"


class ConfigError(Exception):
    """A configuration that cannot be used: ``source`` (file), ``key``
    (dotted path, empty for the whole file) and ``problem``."""

    def __init__(self, source: str, key: str, problem: str) -> None:
        self.source = source
        self.key = key
        self.problem = problem
        where = f"{source}: {key}" if key else source
        super().__init__(f"{where}: {problem}")


class _InvalidError(Exception):
    def __init__(self, key: str, problem: str) -> None:
        super().__init__(problem)
        self.key = key
        self.problem = problem


def _convert(tp: Any, value: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return _convert(args[0], value, key)
    if tp is bool:
        if not isinstance(value, bool):
            raise _InvalidError(key, f"must be true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _InvalidError(key, f"must be an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _InvalidError(key, f"must be a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise _InvalidError(key, f"must be a string, got {value!r}")
        return value
    if tp is ListenAddress:
        if not isinstance(value, str):
            raise _InvalidError(key, f"must be a string like 'udp:127.0.0.1:5060', got {value!r}")
        try:
            return ListenAddress.parse(value)
        except AddressError as e:
            raise _InvalidError(key, str(e)) from None
    if origin is dict:
        key_type, value_type = typing.get_args(tp)
        if not isinstance(value, dict):
            raise _InvalidError(key, f"must be a table, got {value!r}")
        return {_convert(key_type, k, f"{key}.{k}"): _convert(value_type, v, f"{key}.{k}")
                for k, v in value.items()}
    if origin in (tuple, list):
        (item_type, *_) = typing.get_args(tp)
        if item_type is ListenAddress and isinstance(value, str):
            value = [value]  # one address where a list of them is allowed
        if not isinstance(value, list):
            raise _InvalidError(key, f"must be an array, got {value!r}")
        items = [_convert(item_type, v, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if attrs.has(tp):
        if not isinstance(value, dict):
            raise _InvalidError(key, f"must be a table, got {value!r}")
        return _build(tp, value, key)
    raise _InvalidError(key, f"unsupported type {tp!r}")


def _build(cls: type, table: dict[str, Any], prefix: str) -> Any:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in attrs.fields(cls)}
    for name in table:
        if name not in fields:
            where = f"{prefix}.{name}" if prefix else name
            known = ", ".join(sorted(fields))
            raise _InvalidError(where, f"unknown key (known keys: {known})")
    kwargs: dict[str, Any] = {}
    for name, field in fields.items():
        where = f"{prefix}.{name}" if prefix else name
        if name not in table:
            if field.default is attrs.NOTHING:
                raise _InvalidError(where, "missing (this key is required)")
            continue
        value = _convert(hints[name], table[name], where)
        if field.validator is not None:
            try:
                field.validator(None, field, value)
            except (ValueError, TypeError) as e:
                raise _InvalidError(where, str(e)) from None
        kwargs[name] = value
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as e:
        raise _InvalidError(prefix, str(e)) from None


def parse_config(text: str, source: str = DEFAULT_NAME) -> Config:
    """Parse and check configuration ``text``; ``source`` names it in errors."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(source, "", f"not valid TOML: {e}") from None
    try:
        config: Config = _build(Config, document, "")
    except _InvalidError as e:
        raise ConfigError(source, e.key, e.problem) from None
    for key, problem in config.check():
        raise ConfigError(source, key, problem)
    return config


def load_config(path: str | Path) -> Config:
    """Read and check the configuration file at ``path``."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(source, "", f"cannot read: {e.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(source, "", "not UTF-8 text") from None
    return parse_config(text, source)


def default_text() -> str:
    """The embedded default configuration's TOML text."""
    return resources.files("telavox.config").joinpath("default.toml").read_text("utf-8")


def load_default() -> Config:
    """The embedded default configuration (works on a laptop, loopback only)."""
    return parse_config(default_text(), DEFAULT_NAME)
