"""Every limit in the config dataclasses is checked when the config is built: each rule turns a bad value,
or two that contradict each other, into one ConfigError that names the rule and the values."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from pystack.config import HttpConfig, RuntimeConfig, StackConfig, StreamsConfig
from pystack.config_check import ConfigError
from pystack.dhcp.config import DhcpConfig
from pystack.dns.config import DnsConfig
from pystack.ports import PortRange
from pystack.tcp.config import TcpConfig

MiB = 1 << 20

# (config class, the bad values, a piece of the message that rule gives)
BAD: list[tuple[Callable[..., Any], dict[str, Any], str]] = [
    (TcpConfig, {"send_buffer": 0}, "send_buffer and recv_buffer must be above 0"),
    (TcpConfig, {"recv_buffer_max": -1}, "send_buffer_max and recv_buffer_max must be 0 (no growth) or more"),
    (TcpConfig, {"min_mss": 600}, "need 0 < min_mss <= default_mss"),
    (TcpConfig, {"mss": 40}, "mss must be None (MTU - 40) or at least min_mss"),
    (TcpConfig, {"ooo_max_segments": -1}, "ooo_max_segments must be 0 or more"),
    (TcpConfig, {"syn_backlog": 0}, "max_backlog and syn_backlog must be at least 1"),
    (TcpConfig, {"time_wait": -1.0}, "time_wait and max_time_wait must be 0 or more"),
    (TcpConfig, {"syncookie_max_age": 0}, "syncookie_period must be above 0 and syncookie_max_age 1 to 255"),
    (TcpConfig, {"syncookie_mss": (1460, 536)}, "syncookie_mss must hold 1 to 4 sizes in ascending order"),
    (TcpConfig, {"fin_wait2_timeout": 0.0}, "fin_wait2_timeout must be above 0"),
    (TcpConfig, {"isn_secret": b"short"}, "isn_secret must be None or at least 16 bytes"),
    (TcpConfig, {"ts_offset_pairs": 0}, "ts_offset_pairs must be at least 1"),
    (TcpConfig, {"rto_min": 2.0}, "need 0 < rto_min <= rto_initial <= rto_max"),
    (TcpConfig, {"rto_max": 0.5}, "need 0 < rto_min <= rto_initial <= rto_max"),
    (TcpConfig, {"ack_delay": 0.3}, "ack_delay must be above 0 and below rto_min"),
    (TcpConfig, {"ack_delay": 0.6, "rto_min": 1.0}, "ack_delay must be below 0.5 s"),
    (TcpConfig, {"quickacks": -1}, "quickacks must be 0 (none) or more"),
    (TcpConfig, {"tlp_min": 0.0}, "need 0 < tlp_min <= rto_max"),
    (TcpConfig, {"tlp_delayed_ack": 0.6}, "tlp_delayed_ack must be 0 to 0.5 s"),
    (TcpConfig, {"persist_max": 0.1}, "persist_max must be at least rto_min"),
    (TcpConfig, {"max_retries": 0}, "max_retries at least 1"),
    (TcpConfig, {"dupack_threshold": 0}, "initial_window_segments and dupack_threshold must be at least 1"),
    (TcpConfig, {"slow_start_limit": -1}, "slow_start_limit must be 0 (Linux's rule) or more"),
    (TcpConfig, {"congestion_control": "reno"}, "congestion_control must be one of cubic, newreno"),
    (TcpConfig, {"keepalive_probes": 0}, "keepalive_probes at least 1"),
    (TcpConfig, {"challenge_ack_limit": 0}, "challenge_ack_limit at least 1"),
    (StackConfig, {"mtu": 60}, "mtu must be between 68 (RFC 791) and 65535"),
    (StackConfig, {"mtu": 80}, "mtu must leave TCP a segment size (mtu - 40) of at least tcp.min_mss"),
    (StackConfig, {"arp_cache_size": 0}, "arp_cache_size and arp_pending_addresses must be at least 1"),
    (StackConfig, {"arp_retry_interval": 0.0}, "arp_retry_interval and arp_announce_interval must be above 0"),
    (StackConfig, {"arp_max_retries": 0}, "arp_max_retries must be at least 1"),
    (StackConfig, {"arp_announcements": -1}, "arp_pending_bytes and arp_announcements must be 0 or more"),
    (StackConfig, {"default_ttl": 0}, "default_ttl must be between 1 and 255"),
    (StackConfig, {"reassembly_timeout": 0.0}, "reassembly_timeout must be above 0"),
    (StackConfig, {"reassembly_max_bytes": 0}, "reassembly_max_datagrams and reassembly_max_bytes must be at least 1"),
    (StackConfig, {"icmp_global_rate": 0.0}, "icmp_ratelimit_interval and icmp_global_rate must be above 0"),
    (StackConfig, {"icmp_ratelimit_burst": 0}, "icmp_ratelimit_burst and icmp_global_burst must be at least 1"),
    (StackConfig, {"icmp_ratelimit_destinations": 0}, "icmp_ratelimit_destinations must be at least 1"),
    (StackConfig, {"udp_recv_queue": 0}, "udp_recv_queue must be at least 1"),
    (PortRange, {"low": 60000, "high": 40000}, "need 1 <= low <= high <= 65535"),
    (PortRange, {"low": 0}, "need 1 <= low <= high <= 65535"),
    (RuntimeConfig, {"read_batch": 0}, "read_batch must be at least 1"),
    (RuntimeConfig, {"busy_poll": -1e-6}, "busy_poll must be 0 (always sleep) or more"),
    (RuntimeConfig, {"poll_grow_start": 0.0}, "poll_grow_start and busy_poll_auto must be above 0"),
    (RuntimeConfig, {"adaptive_poll": True, "busy_poll": 0.0}, "with adaptive_poll, poll_grow_start must not exceed"),
    (RuntimeConfig, {"heap_mmap_threshold": 64 * MiB}, "heap_mmap_threshold must be above 0 and at most 32 MiB"),
    (RuntimeConfig, {"heap_trim_threshold": 1 << 31}, "heap_trim_threshold and heap_top_pad must fit mallopt's int"),
    (StreamsConfig, {"read_chunk": 0}, "read_chunk must be at least 1"),
    (StreamsConfig, {"low_water": 300 * 1024}, "need 0 <= low_water <= high_water"),
    (HttpConfig, {"max_header_bytes": 10}, "max_header_bytes must be at least 64"),
    (HttpConfig, {"max_buffered_input": 16384}, "max_buffered_input must be above max_header_bytes"),
    (HttpConfig, {"cache_entries": -1}, "small_file, cache_bytes and cache_entries must be 0 or more"),
    (HttpConfig, {"cache_settle": -1.0}, "cache_settle must be 0 or more"),
    (DhcpConfig, {"backoff_initial": 100.0}, "need 0 < backoff_initial <= backoff_max"),
    (DhcpConfig, {"backoff_jitter": 4.0}, "backoff_jitter must be 0 or more and below backoff_initial"),
    (DhcpConfig, {"request_retries": 0}, "request_retries must be at least 1"),
    (DhcpConfig, {"acquire_timeout": 0.0}, "acquire_timeout must be None (keep looking) or above 0"),
    (DhcpConfig, {"startup_delay": -1.0}, "startup_delay must be 0 or more"),
    (DhcpConfig, {"renew_min_interval": 0.0}, "renew_min_interval must be above 0"),
    (DhcpConfig, {"renew_max_attempts": 0}, "renew_max_attempts must be None or at least 1"),
    (DhcpConfig, {"min_lease": 0.0}, "min_lease must be above 0"),
    (DhcpConfig, {"probe_min": 3.0}, "need 0 <= probe_min <= probe_max"),
    (DhcpConfig, {"probe_num": 0}, "probe_num must be at least 1"),
    (DhcpConfig, {"decline_wait": -1.0}, "probe_wait, announce_wait and decline_wait must be 0 or more"),
    (DhcpConfig, {"probe_result_timeout": 5.0}, "probe_result_timeout must be longer than a whole probe"),
    (DhcpConfig, {"max_message_size": 100}, "max_message_size must be between 548"),
    (DhcpConfig, {"host_rounds": 0}, "host_rounds must be at least 1"),
    (DnsConfig, {"timeout": 0.0}, "timeout must be above 0 and backoff at least 1"),
    (DnsConfig, {"attempts": 0}, "attempts and max_outstanding must be at least 1"),
    (DnsConfig, {"cache_size": -1}, "max_cname_hops and cache_size must be 0 or more"),
    (DnsConfig, {"max_ttl": -1}, "max_ttl and max_negative_ttl must be 0 or more"),
    (DnsConfig, {"port_low": 70000}, "need 1 <= port_low <= port_high <= 65535"),
]


@pytest.mark.parametrize(("config", "values", "message"), BAD,
                         ids=[f"{c.__name__}-{'-'.join(v)}" for c, v, _m in BAD])
def test_each_rule_rejects_a_bad_value_with_its_message(config: Callable[..., Any], values: dict[str, Any],
                                                        message: str) -> None:
    with pytest.raises(ConfigError) as exc:
        config(**values)
    text = str(exc.value)
    assert text.startswith(f"{config.__name__}: ") and message in text
    assert "\n" not in text
    rule, _, shown = text.partition(" (now ")
    for name, value in values.items():  # the values of the fields the rule names are shown
        if re.search(rf"\b{name}\b", rule):
            assert f"{name} = {value!r}" in shown


def test_every_rule_is_in_the_table() -> None:
    """A rule added without a case here fails this: the count of checks per class matches the table."""
    import inspect

    for config in (TcpConfig, StackConfig, PortRange, RuntimeConfig, StreamsConfig, HttpConfig, DhcpConfig,
                   DnsConfig):
        rules = inspect.getsource(config.__post_init__).count("need(self,")
        messages = {m for c, _v, m in BAD if c is config}
        assert len(messages) >= rules, f"{config.__name__}: {rules} rules, {len(messages)} cases"


def test_the_defaults_pass_every_rule() -> None:
    config = StackConfig()
    assert config.tcp.ack_delay < config.tcp.rto_min
    DhcpConfig(), DnsConfig()


def test_the_message_gives_the_rule_and_the_values_in_one_line() -> None:
    with pytest.raises(ConfigError) as exc:
        TcpConfig(ack_delay=0.25)
    assert str(exc.value) == (
        "TcpConfig: ack_delay must be above 0 and below rto_min, or the peer's retransmission timer fires before "
        "our delayed ACK (RFC 5681 4.2 allows up to 0.5 s) (now ack_delay = 0.25, rto_min = 0.2)")


def test_a_rule_across_sections_names_the_section_field() -> None:
    with pytest.raises(ConfigError, match=r"now mtu = 80, tcp.min_mss = 48\)"):
        StackConfig(mtu=80)
    StackConfig(mtu=80, tcp=TcpConfig(min_mss=40))  # the same MTU, with a smaller demand on peers


def test_config_errors_are_value_errors() -> None:
    """Callers that catch ValueError for bad input (the CLI, users) catch these too."""
    assert issubclass(ConfigError, ValueError)
