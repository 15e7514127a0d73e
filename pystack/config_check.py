"""The rule check every config dataclass makes in ``__post_init__`` (lwIP's ``init.c`` checks its options
at start-up): a bad value stops the stack being built, with one line that says which rule and the values.
"""

from __future__ import annotations

import dataclasses
import re

_FIELD = re.compile(r"\b[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)?\b")


class ConfigError(ValueError):
    """A limit out of its range, or two that contradict each other."""


def need(config: object, ok: bool, rule: str) -> None:
    """Raise :class:`ConfigError` unless ``ok``: ``rule`` says what must hold, naming the fields
    (``tcp.min_mss`` reaches into a section); their values are appended, so the rule is written once
    and costs nothing to format when it holds."""
    if ok:
        return
    values = []
    for name in dict.fromkeys(_FIELD.findall(rule)):
        value: object = config
        for part in name.split("."):
            value = getattr(value, part, _MISSING)
        if value is not _MISSING and not dataclasses.is_dataclass(value) and not callable(value):
            values.append(f"{name} = {value!r}")
    raise ConfigError(f"{type(config).__name__}: {rule}" + (f" (now {', '.join(values)})" if values else ""))


_MISSING = object()
