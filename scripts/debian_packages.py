"""Install the Debian packages the project uses, exactly those missing: ``make install`` runs this first.

The list lives in ``debian-packages.txt`` at the top of the repository. Each package is asked about on
its own (``dpkg-query``): a tool's name on PATH says nothing about the package that brings it, and no
stamp file is kept, so a package removed since the last run is noticed and installed again. With every
package present the check costs one dpkg-query call.

Standard library only: this runs before the virtual environment exists.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

LIST = Path(__file__).resolve().parent.parent / "debian-packages.txt"


def read_list(path: Path = LIST) -> list[str]:
    """Package names of ``path``: one per line, ``#`` starts a comment."""
    names = []
    for line in path.read_text().splitlines():
        name = line.split("#", 1)[0].strip()
        if name:
            names.append(name)
    return names


def missing(packages: Sequence[str]) -> list[str]:
    """The packages of ``packages`` that dpkg does not have installed (removed, half-installed or unknown)."""
    if not packages:
        return []
    # One call for all: dpkg-query prints the known ones and complains on stderr about the unknown ones.
    proc = subprocess.run(["dpkg-query", "-W", "-f=${Package}\t${db:Status-Abbrev}\n", *packages],
                          capture_output=True, text=True, check=False)
    installed = set()
    for line in proc.stdout.splitlines():
        name, _, status = line.partition("\t")
        if status.startswith("ii"):
            installed.add(name.split(":", 1)[0])
    return [p for p in packages if p not in installed]


def install(packages: Sequence[str]) -> None:
    """apt-get update, then install ``packages`` without questions; raises CalledProcessError on failure."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], env=env, check=True, stdin=subprocess.DEVNULL)
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages], env=env,
                   check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--list", type=Path, default=LIST, help="package list (default: %(default)s)")
    parser.add_argument("--check", action="store_true",
                        help="only report: print the missing packages, exit 1 if any")
    args = parser.parse_args(argv)
    try:
        want = read_list(args.list)
    except OSError as exc:
        print(f"debian_packages: cannot read {args.list}: {exc.strerror}", file=sys.stderr)
        return 2
    lacking = missing(want)
    if args.check:
        for name in lacking:
            print(name)
        return 1 if lacking else 0
    if not lacking:
        return 0
    if os.geteuid() != 0:
        print(f"debian_packages: missing {' '.join(lacking)}; run `make install` as root to install them",
              file=sys.stderr)
        return 1
    print(f"installing Debian packages: {' '.join(lacking)}", flush=True)
    try:
        install(lacking)
    except subprocess.CalledProcessError as exc:
        print(f"debian_packages: {' '.join(map(str, exc.cmd[:3]))} failed (status {exc.returncode})",
              file=sys.stderr)
        return 1
    still = missing(want)
    if still:
        print(f"debian_packages: still missing after apt-get: {' '.join(still)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
