"""User-facing APIs over a running :class:`~pystack.runtime.Runtime`: BSD-shaped sockets (and asyncio later)."""
