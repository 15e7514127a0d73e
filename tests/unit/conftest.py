"""PYSTACK_FAST_PATHS=0 runs the unit suite with the fast paths off by default (``make test`` runs it both
ways): every test that does not choose for itself then proves the layered way as well.

It turns the default of ``StackConfig.fast_paths`` and of a bare ``TcpLayer`` (header prediction) off;
a test that builds its config with ``fast_paths=True`` (the twins of tests/unit/stack/twins.py) keeps it.
"""

from __future__ import annotations

import os

import pytest

from pystack.config import StackConfig
from pystack.tcp.layer import TcpLayer


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("PYSTACK_FAST_PATHS", "1") == "0":
        _set_default_fast_paths(False)


def _set_default_fast_paths(on: bool) -> None:
    init = StackConfig.__init__
    code = init.__code__
    names = code.co_varnames[1:code.co_argcount]
    defaults = list(init.__defaults__ or ())
    defaults[names.index("fast_paths") - (len(names) - len(defaults))] = on
    init.__defaults__ = tuple(defaults)
    TcpLayer.FAST_PATHS_DEFAULT = on
    assert StackConfig().fast_paths is on


def pytest_report_header(config: pytest.Config) -> str:
    return f"fast paths: {'on' if StackConfig().fast_paths else 'off'} by default (PYSTACK_FAST_PATHS)"
