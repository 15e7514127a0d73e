"""Link backends: the only code that touches file descriptors (TAP) or stands in for them (memory)."""
