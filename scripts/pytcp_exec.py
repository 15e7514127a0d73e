"""Run a Python program with PyTCP's ``pytcp.socket`` in place of ``socket``: PyTCP's counterpart of ``pystack exec``.

``python3.14 pytcp_exec.py [--log] SCRIPT [ARGS...]`` (the interpreter of scripts/pytcp_python.py): PyTCP's drop-in is
installed as the process's ``socket`` module (``sys.modules["socket"] = pytcp.socket``, the one-line swap its
documentation gives) before SCRIPT imports anything, then SCRIPT runs as ``__main__`` with ARGS. Its sockets
are opened on the PyTCP daemon whose control socket ``$PYTCP_DAEMON_SOCKET`` names. PyTCP's own modules keep
the real socket module (pytcp.ipc.ipc__stdlib_socket captured it on import). PyTCP's console log is off
in this process too, unless ``--log`` (see scripts/pytcp_daemon.py).
"""

import runpy
import sys

import pytcp.socket
import pytcp.stack

sys.modules["socket"] = pytcp.socket

if __name__ == "__main__":
    args = sys.argv[1:]
    if args[:1] == ["--log"]:
        args = args[1:]
    else:
        pytcp.stack.LOG__CHANNEL.clear()
    if not args:
        print("usage: pytcp_exec.py [--log] SCRIPT [ARGS...]", file=sys.stderr)
        raise SystemExit(2)
    sys.argv = args
    runpy.run_path(sys.argv[0], run_name="__main__")
