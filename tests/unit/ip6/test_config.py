"""Ipv6Config: defaults that are the RFCs' and Linux's, and one clear error for a bound that cannot work."""

from __future__ import annotations

import pytest

from pystack.ip6.config import IID_STABLE, Ipv6Config


def test_defaults_are_the_rfc_constants() -> None:
    c = Ipv6Config()
    # RFC 4861 section 10 and RFC 8200 section 4.5.
    assert (c.max_multicast_solicit, c.max_unicast_solicit, c.retrans_timer, c.base_reachable_time,
            c.delay_first_probe_time) == (3, 3, 1.0, 30.0, 5.0)
    assert (c.max_rtr_solicitation_delay, c.rtr_solicitation_interval, c.max_rtr_solicitations) == (1.0, 4.0, 3)
    assert c.reassembly_timeout == 60.0 and c.dad_transmits == 1 and c.idgen_retries == 3


@pytest.mark.parametrize("kwargs", [
    {"reassembly_max_datagrams": 0},
    {"neighbour_cache_size": -1},
    {"retrans_timer": 0.0},
    {"default_hop_limit": 0},
    {"default_hop_limit": 256},
    {"neighbour_pending_addresses": 512},  # as large as the cache: no resolved entry left to evict
    {"iid_mode": "random"},
    {"iid_mode": IID_STABLE, "stable_secret": b"short"},
    {"dad_transmits": -1},
])
def test_impossible_settings_are_refused_in_one_line(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError) as info:
        Ipv6Config(**kwargs)  # type: ignore[arg-type]
    assert "Ipv6Config." in str(info.value) and "\n" not in str(info.value)


def test_stable_identifiers_with_a_secret_and_dad_off_are_accepted() -> None:
    assert Ipv6Config(iid_mode=IID_STABLE, stable_secret=bytes(16), dad_transmits=0).dad_transmits == 0
