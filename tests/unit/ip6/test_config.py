"""Ipv6Config: defaults that are the RFCs' and Linux's, and each rule turning a bad value into one
ConfigError line that names the rule and the values."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from pystack.config_check import ConfigError
from pystack.ip6.config import IID_STABLE, Ipv6Config

# (bad values, a piece of the message their rule gives): one case per rule at least.
BAD: list[tuple[dict[str, Any], str]] = [
    ({"default_hop_limit": 0}, "default_hop_limit must be 1 to 255"),
    ({"max_extension_headers": 0}, "max_extension_headers must be at least 1"),
    ({"reassembly_timeout": 0.0}, "reassembly_timeout must be above 0"),
    ({"reassembly_max_fragments": 0}, "reassembly_max_fragments must be at least 1"),
    ({"path_mtu_entries": 0}, "path_mtu_entries must be at least 1 and path_mtu_timeout above 0"),
    ({"destination_cache_size": 0}, "destination_cache_size must be at least 1"),
    ({"neighbour_pending_addresses": 512}, "need 1 <= neighbour_pending_addresses < neighbour_cache_size"),
    ({"neighbour_pending_bytes": -1}, "neighbour_pending_bytes must be 0 or more"),
    ({"max_unicast_solicit": 0}, "max_multicast_solicit and max_unicast_solicit must be at least 1"),
    ({"retrans_timer": 0.0}, "retrans_timer, base_reachable_time and delay_first_probe_time must be above 0"),
    ({"rtr_solicitation_interval": 0.0}, "rtr_solicitation_interval above 0"),
    ({"max_dns_servers": -1}, "max_dns_servers must be 0 or more"),
    ({"max_addresses": 0}, "max_addresses must be at least 1"),
    ({"dad_transmits": -1}, "dad_transmits, idgen_retries and idgen_delay must be 0 or more"),
    ({"iid_mode": "random"}, "iid_mode must be 'eui64' or 'stable'"),
    ({"stable_secret": b"short", "iid_mode": IID_STABLE}, "stable_secret of at least 16 bytes"),
]


def test_defaults_are_the_rfc_constants() -> None:
    c = Ipv6Config()
    # RFC 4861 section 10 and RFC 8200 section 4.5.
    assert (c.max_multicast_solicit, c.max_unicast_solicit, c.retrans_timer, c.base_reachable_time,
            c.delay_first_probe_time) == (3, 3, 1.0, 30.0, 5.0)
    assert (c.max_rtr_solicitation_delay, c.rtr_solicitation_interval, c.max_rtr_solicitations) == (1.0, 4.0, 3)
    assert c.reassembly_timeout == 60.0 and c.dad_transmits == 1 and (c.idgen_retries, c.idgen_delay) == (3, 1.0)


@pytest.mark.parametrize(("values", "message"), BAD, ids=[m for _v, m in BAD])
def test_each_rule_rejects_a_bad_value_in_one_line(values: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        Ipv6Config(**values)
    text = str(info.value)
    assert text.startswith("Ipv6Config: ") and message in text and "\n" not in text
    assert f"{next(iter(values))} = {next(iter(values.values()))!r}" in text


def test_every_rule_has_a_case() -> None:
    assert len({m for _v, m in BAD}) >= inspect.getsource(Ipv6Config.__post_init__).count("need(self,")


def test_stable_identifiers_with_a_secret_and_dad_off_are_accepted() -> None:
    assert Ipv6Config(iid_mode=IID_STABLE, stable_secret=bytes(16), dad_transmits=0).dad_transmits == 0
