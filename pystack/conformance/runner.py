"""Find scripts, run each, print its verdict, count them."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, TextIO

from pystack.conformance.driver import Driver, Settings, Verdict
from pystack.conformance.parser import parse_file
from pystack.conformance.script import ScriptError


@dataclass(slots=True)
class Summary:
    verdicts: list[Verdict] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for v in self.verdicts if v.status == status)

    def line(self) -> str:
        return f"{self.count('PASS')} passed, {self.count('FAIL')} failed, {self.count('SKIP')} skipped"


CORPUS_ENV = "PYSTACK_PACKETDRILL"


# Where the workplace keeps the corpus, for clones made elsewhere (CI clones into a directory of its own).
WORKPLACE_CORPUS = Path("/work/shared/conformance/packetdrill")


def default_corpus() -> Path:
    """Where the packetdrill corpus is looked for: $PYSTACK_PACKETDRILL, else ``shared/conformance/packetdrill``
    in the directory that holds the repository (``../shared/...`` from its root), else the workplace's copy."""
    env = os.environ.get(CORPUS_ENV)
    if env:
        return Path(env)
    beside = Path(__file__).resolve().parents[2].parent / "shared" / "conformance" / "packetdrill"
    return beside if beside.exists() or not WORKPLACE_CORPUS.exists() else WORKPLACE_CORPUS


def corpus_tcp_scripts() -> Path:
    """The corpus's TCP scripts (gtests/net/tcp)."""
    return default_corpus() / "gtests" / "net" / "tcp"


def find_scripts(paths: list[str]) -> list[tuple[str, str]]:
    """(path, name to show) of the ``.pkt`` files named or under the directories named, in order; a script
    under a directory is shown relative to it. FileNotFoundError for a path that does not exist."""
    found: list[tuple[str, str]] = []
    for path in paths:
        if os.path.isdir(path):
            for root, dirs, files in os.walk(path):
                dirs.sort()
                for f in sorted(files):
                    if f.endswith(".pkt"):
                        full = os.path.join(root, f)
                        found.append((full, os.path.relpath(full, path)))
        elif os.path.isfile(path):
            found.append((path, path))
        else:
            raise FileNotFoundError(f"no such file or directory: {path}")
    return found


def run_script(path: str, settings: Settings, name: str | None = None,
               trace: Callable[[str], None] | None = None) -> Verdict:
    """One script's verdict; ``name`` is how the verdict names it (the path by default)."""
    name = name or path
    try:
        script = parse_file(path)
    except ScriptError as exc:
        return Verdict(name, "SKIP", f"runner cannot read it: {exc}")
    except OSError as exc:
        return Verdict(name, "SKIP", f"cannot read it: {exc.strerror}")
    script.path = name
    return Driver(script, settings, trace).run()


def run_paths(paths: list[str], settings: Settings, out: TextIO | None = None, quiet: bool = False,
              verbose: bool = False) -> Summary:
    """Every script's verdict, each printed to ``out`` as it comes (only failures when ``quiet``; with
    ``verbose``, each script's timeline first: its events and the segments pystack sent)."""
    summary = Summary()
    trace = (lambda line: print(line, file=out)) if verbose and out is not None else None
    for path, name in find_scripts(paths):
        verdict = run_script(path, settings, name, trace)
        summary.verdicts.append(verdict)
        if out is not None and not (quiet and verdict.status != "FAIL"):
            print(verdict.line(), file=out, flush=True)
    return summary
