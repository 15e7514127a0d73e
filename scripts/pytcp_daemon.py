"""PyTCP 3.0.9's daemon (``python -m pytcp.daemon ARGS``), with its console log off unless ``--log`` comes first.

As shipped, PyTCP prints a line per frame and per step of each layer to stderr (``pytcp.stack.LOG__CHANNEL``,
the set of subsystems that log, holds all of them); formatting those lines costs it more than the frames do.
``make bench`` measures it with that set emptied, PyTCP's own switch, so its figures are its protocol work, as
pystack's are (pystack logs warnings only by default). The arguments are the daemon's own (``--help``).
"""

import sys

import pytcp.stack
from pytcp.daemon.__main__ import main

if __name__ == "__main__":
    args = sys.argv[1:]
    if args[:1] == ["--log"]:
        args = args[1:]
    else:
        pytcp.stack.LOG__CHANNEL.clear()
    main(args)
