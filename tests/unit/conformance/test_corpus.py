"""The upstream packetdrill corpus, when it is beside the repository: its RFC-generic scripts keep their
verdicts under the linux profile, over IPv4 and over IPv6 (TCP is one code path for both families, so the
verdicts are the same), and every script of it gets a verdict from pystack, none from a runner error.
Skipped (with the path looked at) on a machine without the corpus."""

from __future__ import annotations

import os

import pytest

from pystack.conformance.driver import Settings
from pystack.conformance.runner import CORPUS_ENV, corpus_tcp_scripts, find_scripts, run_script

CORPUS = corpus_tcp_scripts()
pytestmark = pytest.mark.skipif(not CORPUS.is_dir(), reason=f"no packetdrill corpus at {CORPUS} (${CORPUS_ENV})")

RFC_GENERIC = ("blocking", "close", "shutdown", "fast_retransmit", "limited_transmit", "ts_recent", "validate",
               "ioctl", "mss")
DEVIATIONS = {
    # Each a deliberate difference, with its reason in docs/conformance.md; the text is the verdict's.
    "blocking/blocking-write.pkt": "write() returned at 0.400000 s, expected at 0.500000 s",
    "fast_retransmit/fr-4pkt-fack-last-mss.pkt": "expected `> . 1:1001(1000) ack 1` at 0.240000 s",
    "ts_recent/invalid_ack.pkt": "got `> . 1:1(0) ack 1 win 65535 <nop,nop,TS val 200 ecr 200>`",
}


def _verdicts(directories: tuple[str, ...] | None = None, ip_version: str = "ipv4") -> dict[str, tuple[str, str]]:
    paths = [str(CORPUS / d) for d in directories] if directories else [str(CORPUS)]
    out = {}
    for path, name in find_scripts(paths):
        rel = os.path.relpath(path, CORPUS)
        verdict = run_script(path, Settings(profile="linux", ip_version=ip_version), rel)
        out[rel] = (verdict.status, verdict.detail)
    return out


@pytest.mark.parametrize("ip_version", ["ipv4", "ipv6"])
def test_the_rfc_generic_scripts_pass_but_for_the_documented_deviations(ip_version: str):
    verdicts = _verdicts(RFC_GENERIC, ip_version)
    assert len(verdicts) == 27
    for name, (status, detail) in sorted(verdicts.items()):
        if name in DEVIATIONS:
            assert status == "FAIL" and DEVIATIONS[name] in detail, (name, status, detail)
        else:
            assert status == "PASS", (name, status, detail)


@pytest.mark.parametrize("ip_version", ["ipv4", "ipv6"])
def test_every_script_of_the_corpus_gets_a_verdict_of_its_own(ip_version: str):
    verdicts = _verdicts(ip_version=ip_version)
    assert len(verdicts) >= 160
    for name, (status, detail) in verdicts.items():
        assert status in ("PASS", "FAIL", "SKIP"), name
        assert "runner error" not in detail and "internal error" not in detail, (name, detail)
        assert status == "PASS" or detail, name
