"""Applications built into the daemon. They run inside the loop, driven by socket events."""
