"""Suite-wide switches: tests marked ``slow`` run only with PYSTACK_SLOW=1 (``make test-slow``)."""

from __future__ import annotations

import os

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("PYSTACK_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow: run with `make test-slow` (PYSTACK_SLOW=1)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
