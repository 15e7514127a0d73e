"""Client tools on pystack's own stack: ``pystack fetch``, ``resolve`` and ``ping``, with a narrator that
tells each step of the exchange as it happens and draws a ladder diagram at the end."""
