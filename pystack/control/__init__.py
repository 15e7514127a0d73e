"""The control socket of a running daemon, and the commands that ask it (``pystack ss``, ``pystack stats``).

The daemon listens on a Unix stream socket, by default the abstract name ``@pystack/<tap>``: abstract
names belong to a network namespace, so two labs that each run a daemon on ``pst0`` do not collide, and
the peer's credentials (SO_PEERCRED) stand in for file permissions: only root is answered. A request is
one line of JSON, the answer one JSON document, then the daemon closes. The loop serves it between
frames, never blocking on a client (pystack.control.server).
"""
