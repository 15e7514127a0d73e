"""The README's sans-I/O example runs as written and prints what the README says it prints.

The block is taken from README.md itself (the Python block after the ``readme-example: sans-io`` marker,
and the output quoted in the sentence ``It prints `...` `` after it), so the README cannot drift from
the code without this test failing.
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"
MARKER = "<!-- readme-example: sans-io"


def _example() -> tuple[str, str]:
    """(the marked Python block, the output the README promises)."""
    text = README.read_text()
    start = text.index(MARKER)
    block = re.compile(r"```python\n(.*?)```\n", re.S).search(text, start)
    assert block is not None, "no python block after the readme-example marker"
    promised = re.compile(r"It prints `([^`]*)`").search(text, block.end())
    assert promised is not None, "no 'It prints `...`' after the readme-example block"
    return block.group(1), promised.group(1)


def test_readme_sans_io_example_runs_and_prints_what_the_readme_says() -> None:
    code, promised = _example()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, f"{README}:readme-example", "exec"), {"__name__": "readme_example"})
    assert out.getvalue().strip() == promised
