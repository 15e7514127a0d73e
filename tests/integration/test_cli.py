"""``pystack run`` refuses bad input with one line on stderr and exit status 2, never a traceback."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence

import pytest

from pystack_lab import lab

pytestmark = pytest.mark.integration

GOOD = ["--tap", lab.TAP, "--address", lab.STACK_ADDRESS]


def _run(ns: lab.Namespace, argv: Sequence[str], prefix: Sequence[str] = ()) -> subprocess.CompletedProcess[str]:
    """The daemon is run inside the test's namespace so that an unexpected success touches nothing else."""
    try:
        return ns.run([*prefix, *lab.pystack_command(), *argv], timeout=20)
    except subprocess.TimeoutExpired:
        pytest.fail(f"pystack {' '.join(argv)} kept running instead of refusing")


def _assert_usage_error(proc: subprocess.CompletedProcess[str]) -> None:
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""


@pytest.mark.parametrize("argv", [
    pytest.param(["run", *GOOD, "--bogus"], id="unknown-flag"),
    pytest.param(["run", "--tap", lab.TAP], id="missing-address"),
    pytest.param(["run", "--tap", lab.TAP, "--address", "999.1.2.3/24"], id="bad-address"),
    pytest.param(["run", "--tap", lab.TAP, "--address", "not-an-address"], id="garbage-address"),
    pytest.param(["run", "--tap", lab.TAP, "--address", "192.0.2.2/33"], id="bad-prefix"),
    pytest.param(["run", *GOOD, "--gateway", "192.0.2"], id="bad-gateway"),
    pytest.param(["run", *GOOD, "--host-address", "192.0.2.1"], id="host-address-without-prefix"),
    pytest.param(["run", *GOOD, "--mtu", "lots"], id="bad-mtu"),
    pytest.param(["run", *GOOD, "--tcp-max-retries", "0"], id="bad-tcp-max-retries"),
    pytest.param(["run", *GOOD, "--log-level", "loud"], id="bad-log-level"),
    pytest.param(["run", "--tap", lab.TAP, "--dhcp", "--record", "run.rec"], id="record-with-dhcp"),
    pytest.param(["run", *GOOD, "--record", "/nonexistent/run.rec"], id="record-unwritable"),
    pytest.param(["run", *GOOD, "--record", "run.rec", "--record-limit", "0"], id="bad-record-limit"),
    pytest.param(["run", *GOOD, "--trace", "/nonexistent/run.jsonl"], id="trace-unwritable"),
    pytest.param(["replay", "/nonexistent/run.rec"], id="replay-unreadable"),
    pytest.param(["fly"], id="unknown-command"),
    pytest.param([], id="no-command"),
])
def test_bad_arguments(daemon_ready: None, ns: lab.Namespace, argv: list[str]) -> None:
    _assert_usage_error(_run(ns, argv))


def test_not_root(daemon_ready: None, ns: lab.Namespace) -> None:
    if shutil.which("setpriv") is None:
        pytest.skip("needs setpriv (util-linux) to drop root")
    nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all"]
    _assert_usage_error(_run(ns, ["run", *GOOD], prefix=nobody))


def test_no_tun_device(daemon_ready: None, ns: lab.Namespace) -> None:
    """/dev/net/tun hidden behind an empty tmpfs, in a private mount namespace of this command only."""
    hide = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
            'mount -t tmpfs none /dev/net && exec "$@"', "sh"]
    probe = ns.run([*hide, "true"], timeout=20)
    if probe.returncode != 0:
        pytest.skip(f"cannot make a private mount namespace here: {probe.stderr.strip()}")
    _assert_usage_error(_run(ns, ["run", *GOOD], prefix=hide))


def test_help_exits_zero(daemon_ready: None, ns: lab.Namespace) -> None:
    proc = _run(ns, ["run", "--help"])
    assert proc.returncode == 0 and "--tap" in proc.stdout, proc.stderr
