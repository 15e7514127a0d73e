"""The install step's detection: each package of the list is asked about on its own, so one package
present never hides another that is missing (the old ``command -v a b c`` check did)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "debian_packages.py"
ABSENT = "pystack-surely-not-a-debian-package"

pytestmark = pytest.mark.skipif(shutil.which("dpkg-query") is None, reason="needs dpkg (Debian)")


def check(tmp_path: Path, *names: str) -> subprocess.CompletedProcess[str]:
    listing = tmp_path / "packages.txt"
    listing.write_text("# a comment line\n" + "".join(f"{n}   # why\n" for n in names))
    return subprocess.run([sys.executable, str(SCRIPT), "--check", "--list", str(listing)],
                          capture_output=True, text=True, timeout=30)


def test_an_installed_package_is_reported_present(tmp_path: Path) -> None:
    proc = check(tmp_path, "dpkg")  # dpkg-query itself comes from it
    assert (proc.returncode, proc.stdout) == (0, "")


def test_a_package_that_is_not_installed_is_reported_missing(tmp_path: Path) -> None:
    proc = check(tmp_path, ABSENT)
    assert (proc.returncode, proc.stdout.split()) == (1, [ABSENT])


def test_a_present_package_does_not_hide_a_missing_one(tmp_path: Path) -> None:
    proc = check(tmp_path, "dpkg", ABSENT, "coreutils")
    assert (proc.returncode, proc.stdout.split()) == (1, [ABSENT])
