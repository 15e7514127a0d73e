"""pystack exec's program runner: the command line, the exit status, and the module put in place."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pystack.tools.program import Program, ProgramError, run_program


@pytest.fixture
def interpreter_state() -> Iterator[None]:
    """run_program sets sys.argv, sys.path and __main__ as python would: put them back."""
    argv, path, main = list(sys.argv), list(sys.path), sys.modules["__main__"]
    try:
        yield
    finally:
        sys.argv[:] = argv
        sys.path[:] = path
        sys.modules["__main__"] = main


def test_the_program_part_of_the_command_line(tmp_path: Path) -> None:
    script = tmp_path / "prog.py"
    script.write_text("pass\n")
    assert Program.parse(["--", "-m", "http.server", "8000"]) == Program(module="http.server", args=["8000"])
    assert Program.parse(["-c", "print(1)", "x"]) == Program(code="print(1)", args=["x"])
    assert Program.parse([str(script), "-v"]) == Program(script=str(script), args=["-v"])
    for bad in ([], ["--"], ["-m"], ["-c"], ["-x", "y"], [str(tmp_path / "missing.py")]):
        with pytest.raises(ProgramError):
            Program.parse(bad)


@pytest.mark.parametrize("code, status", [
    ("pass", 0), ("import sys; sys.exit(5)", 5), ("import sys; sys.exit()", 0), ("raise SystemExit(300)", 300 & 0xFF),
    ("import sys; sys.exit('a message')", 1), ("raise KeyboardInterrupt", 130), ("1 / 0", 1),
])
def test_the_exit_status_is_the_programs(interpreter_state: None, code: str, status: int) -> None:
    assert run_program(Program(code=code)) == status


def test_a_failing_program_shows_its_own_traceback(interpreter_state: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_program(Program(code="def f():\n    raise ValueError('deep')\nf()")) == 1
    err = capsys.readouterr().err
    assert 'File "<string>", line 2, in f' in err and "ValueError: deep" in err
    assert "runpy" not in err and "pystack/tools" not in err


def test_argv_and_the_programs_threads(interpreter_state: None, tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    script = tmp_path / "prog.py"
    script.write_text(
        "import json, sys, threading, time\n"
        "def later():\n"
        "    time.sleep(0.2)\n"
        f"    open({str(out)!r}, 'w').write(json.dumps({{'argv': sys.argv, 'name': __name__}}))\n"
        "threading.Thread(target=later).start()\n")
    assert run_program(Program(script=str(script), args=["one", "two"])) == 0
    # The non-daemon thread finished before run_program returned, as the interpreter waits for it.
    assert json.loads(out.read_text()) == {"argv": [str(script), "one", "two"], "name": "__main__"}


def test_modules_imported_before_get_pystacks_socket_and_pystack_keeps_the_kernels() -> None:
    """In a fresh interpreter: asyncio was imported first (as the set-up does); afterwards it and a new
    import both see pystack.socket, while pystack's own modules keep the kernel's."""
    code = (
        "import asyncio, json, socket\n"
        "from pystack.tools.program import put_pystack_socket_in_place\n"
        "changed = put_pystack_socket_in_place()\n"
        "import asyncio.base_events, http.client, pystack.api.socket\n"
        "print(json.dumps([asyncio.base_events.socket.__name__, 'asyncio.base_events' in changed,\n"
        "                  http.client.socket.__name__, pystack.api.socket._socket.__name__,\n"
        "                  asyncio.base_events.socket.create_connection.__module__]))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == ["pystack.socket", True, "pystack.socket", "socket", "pystack.socket"]
