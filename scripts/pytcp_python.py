"""A Python 3.14 that runs PyTCP 3.0.9, made without installing anything into the system; prints its path.

PyTCP 3.0.9 needs Python >= 3.14; Debian 12 ships 3.11, but Debian's unstable suite (sid), on the mirror this
machine's APT already uses, carries 3.14. This script, idempotently, into a cache directory outside the
repository (``$PYSTACK_CACHE``, else ``$XDG_CACHE_HOME/pystack``, else ``~/.cache/pystack``):
  1. a private APT configuration: its own sources list naming sid on the system's mirror (read from
     /etc/apt/sources.list*), its own lists, cache and an empty status file, so the system's APT state
     and packages are untouched;
  2. ``apt-get download`` of python3.14-minimal, libpython3.14-minimal, libpython3.14-stdlib and what they
     depend on (``apt-cache depends --recurse``: libc6, libssl3t64, libffi8, ...), ``dpkg -x`` of each into
     ``root/``: sid's libc is newer than the system's, so the interpreter is started by the unpacked
     ``ld-linux-x86-64.so.2 --library-path root/usr/lib/x86_64-linux-gnu`` with ``PYTHONHOME=root/usr``;
  3. ``pip install --target site --ignore-requires-python pytcp==3.0.9`` (pure Python; this interpreter's
     pip does the install, the 3.14 one byte-compiles it);
  4. ``bin/python``, a shell script that starts that interpreter with ``site`` on its path: the
     ``PYTCP_PYTHON`` of scripts/bench_pytcp.py.
Done once; later runs check that ``bin/python`` imports pytcp and print its path. Exit status 1 and one line
on stderr saying why when it cannot be made (no network, no mirror, a package gone from sid, not root).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

PYTCP = "pytcp==3.0.9"
PACKAGES = ("python3.14-minimal", "libpython3.14-minimal", "libpython3.14-stdlib")
SUITE = "sid"
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
LIBDIR = "usr/lib/x86_64-linux-gnu"
STAMP = "ready"


class SetupError(Exception):
    """Why the interpreter could not be made (one line)."""


def cache_dir() -> Path:
    base = os.environ.get("PYSTACK_CACHE")
    if base:
        return Path(base) / "pytcp-3.0.9"
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "pystack" / "pytcp-3.0.9"


def system_mirror() -> tuple[str, str]:
    """The Debian archive URI this machine's APT uses (not its security archive), and the keyring it trusts."""
    found: list[tuple[str, str]] = []
    parts = Path("/etc/apt/sources.list.d")
    for path in sorted(parts.glob("*.sources")) if parts.is_dir() else []:
        for stanza in re.split(r"\n\s*\n", path.read_text()):
            fields: dict[str, str] = {}
            for line in stanza.splitlines():
                if line and not line.startswith(("#", " ", "\t")) and ":" in line:
                    key, _, value = line.partition(":")
                    fields[key.strip().lower()] = value.strip()
            suites = fields.get("suites", "").split()
            if ("deb" in fields.get("types", "").split() and "main" in fields.get("components", "").split()
                    and suites and not any("security" in s for s in suites)):
                keyring = fields.get("signed-by", "")
                for uri in fields.get("uris", "").split():
                    found.append((uri, keyring if keyring.startswith("/") else KEYRING))
    for path in [Path("/etc/apt/sources.list"), *sorted(parts.glob("*.list"))] if parts.is_dir() else []:
        if not path.is_file():
            continue
        for line in path.read_text().splitlines():
            m = re.match(r"\s*deb\s+(?:\[(?P<opts>[^]]*)\]\s+)?(?P<uri>\S+)\s+(?P<suite>\S+)\s+(?P<comps>.*)", line)
            if m and "security" not in m["suite"] and "main" in m["comps"].split():
                key = re.search(r"signed-by=(\S+)", m["opts"] or "")
                found.append((m["uri"], key.group(1) if key else KEYRING))
    debian = [f for f in found if f[0].rstrip("/").endswith("/debian")]
    if not (debian or found):
        raise SetupError("no Debian archive in /etc/apt/sources.list*")
    return (debian or found)[0]


def run(argv: list[str], what: str, timeout: float, env: dict[str, str] | None = None,
        cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd)
    except subprocess.TimeoutExpired:
        raise SetupError(f"{what} did not finish in {timeout:.0f} s") from None
    except OSError as exc:
        raise SetupError(f"{what}: {exc}") from None
    if proc.returncode != 0:
        tail = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-1:] or ["no output"]
        raise SetupError(f"{what} failed: {tail[0][:200]}")
    return proc


def private_apt(cache: Path) -> dict[str, str]:
    """The APT configuration of this cache only; the environment that makes apt-get and apt-cache use it."""
    uri, keyring = system_mirror()
    apt = cache / "apt"
    for sub in ("etc/sources.list.d", "etc/preferences.d", "lists/partial", "archives/partial", "state"):
        (apt / sub).mkdir(parents=True, exist_ok=True)
    (apt / "etc" / "sources.list").write_text(f"deb [signed-by={keyring}] {uri} {SUITE} main\n")
    (apt / "state" / "status").touch()
    conf = apt / "apt.conf"
    conf.write_text("\n".join([
        f'Dir::Etc::SourceList "{apt}/etc/sources.list";',
        f'Dir::Etc::SourceParts "{apt}/etc/sources.list.d";',
        f'Dir::Etc::Preferences "{apt}/etc/preferences";',
        f'Dir::Etc::PreferencesParts "{apt}/etc/preferences.d";',
        f'Dir::State "{apt}/state";',
        f'Dir::State::Lists "{apt}/lists";',
        f'Dir::State::status "{apt}/state/status";',
        f'Dir::Cache "{apt}";',
        f'Dir::Cache::Archives "{apt}/archives";',
        'Dir::Cache::pkgcache "";',
        'Dir::Cache::srcpkgcache "";',
        'APT::Architecture "amd64";',
        'APT::Architectures { "amd64"; };',
        'APT::Sandbox::User "root";',
        "",
    ]))
    return {**os.environ, "APT_CONFIG": str(conf)}


def closure(env: dict[str, str]) -> list[str]:
    """PACKAGES and every package they depend on, recursively (virtual names left out: a real one is listed)."""
    proc = run(["apt-cache", "depends", "--recurse", "--no-recommends", "--no-suggests", "--no-conflicts",
                "--no-breaks", "--no-replaces", "--no-enhances", *PACKAGES], "apt-cache depends", 120, env=env)
    names = {line.strip() for line in proc.stdout.splitlines() if line and not line[0].isspace()}
    return sorted(n for n in names if not n.startswith("<"))


def wrapper(cache: Path) -> str:
    root = cache / "root"
    return "\n".join([
        "#!/bin/sh",
        "# Python 3.14 from Debian sid, unpacked by scripts/pytcp_python.py, with PyTCP on its path.",
        f'PYTHONHOME="{root}/usr" PYTHONPATH="{cache}/site${{PYTHONPATH:+:$PYTHONPATH}}" \\',
        f'  exec "{root}/{LIBDIR}/ld-linux-x86-64.so.2" --library-path "{root}/{LIBDIR}" \\',
        f'  "{root}/usr/bin/python3.14" "$@"',
        "",
    ])


def works(python: Path) -> str | None:
    """None when ``python`` is 3.14 or later and imports pytcp's drop-in and daemon; else why not."""
    try:
        proc = subprocess.run([str(python), "-c", "import sys, pytcp.socket, pytcp.daemon; "
                               "assert sys.version_info >= (3, 14), sys.version"],
                              capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{python}: {exc}"
    if proc.returncode != 0:
        return f"{python}: {(proc.stderr.strip().splitlines() or ['exit ' + str(proc.returncode)])[-1][:200]}"
    return None


def ensure(cache: Path) -> Path:
    """The interpreter's path, made first when the cache does not hold a working one."""
    python = cache / "bin" / "python"
    if (cache / STAMP).exists() and works(python) is None:
        return python
    if os.geteuid() != 0:
        raise SetupError("needs root (apt-get download under a private configuration)")
    missing = [t for t in ("apt-get", "apt-cache", "dpkg") if shutil.which(t) is None]
    if missing:
        raise SetupError(f"needs {', '.join(missing)}")
    (cache / STAMP).unlink(missing_ok=True)
    env = private_apt(cache)
    print(f"pytcp_python: fetching sid's package lists into {cache / 'apt'} ...", file=sys.stderr, flush=True)
    run(["apt-get", "update", "-q"], "apt-get update (sid)", 300, env=env)
    names = closure(env)
    debs = cache / "debs"
    shutil.rmtree(debs, ignore_errors=True)
    debs.mkdir(parents=True)
    print(f"pytcp_python: apt-get download of {len(names)} packages ...", file=sys.stderr, flush=True)
    run(["apt-get", "download", "-q", *names], "apt-get download", 600, env=env, cwd=debs)
    root = cache / "root"
    shutil.rmtree(root, ignore_errors=True)
    for deb in sorted(debs.glob("*.deb")):
        run(["dpkg", "-x", str(deb), str(root)], f"dpkg -x {deb.name}", 120)
    if not (root / LIBDIR / "ld-linux-x86-64.so.2").exists() or not (root / "usr/bin/python3.14").exists():
        raise SetupError("the unpacked packages hold no ld-linux-x86-64.so.2 or python3.14")
    site = cache / "site"
    shutil.rmtree(site, ignore_errors=True)
    print(f"pytcp_python: pip install --target {site} {PYTCP} ...", file=sys.stderr, flush=True)
    run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-compile",
         "--target", str(site), "--ignore-requires-python", PYTCP], "pip install pytcp", 600)
    python.parent.mkdir(parents=True, exist_ok=True)
    python.write_text(wrapper(cache))
    python.chmod(0o755)
    run([str(python), "-m", "compileall", "-q", str(site)], "byte-compiling pytcp", 300)
    why = works(python)
    if why is not None:
        raise SetupError(why)
    (cache / STAMP).write_text(f"{PYTCP} {' '.join(sorted(p.name for p in debs.glob('*.deb')))}\n")
    for done in (debs, cache / "apt" / "lists"):  # unpacked in root/: neither is needed again (~60 MB)
        shutil.rmtree(done, ignore_errors=True)
    return python


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=None, help=f"where to make it (default {cache_dir()})")
    args = parser.parse_args()
    try:
        python = ensure(args.cache or cache_dir())
    except SetupError as exc:
        print(f"pytcp_python: {exc}", file=sys.stderr)
        return 1
    print(python)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
