"""TapLink.from_fd refuses what is not a TAP descriptor, in one line (no root needed to check)."""

from __future__ import annotations

import os

import pytest

from pystack.link.tap import TapError, TapLink, interface_state


def test_a_descriptor_that_is_not_a_tap_is_refused() -> None:
    r, w = os.pipe()
    try:
        with pytest.raises(TapError, match=f"descriptor {r} is not a TUN/TAP device"):
            TapLink.from_fd(r)
    finally:
        os.close(r)
        os.close(w)


def test_interface_state_reads_without_privilege() -> None:
    mtu, up, mac = interface_state("lo")
    assert mtu > 0 and up and mac == bytes(6)
    assert interface_state("no-such-if0") is None
