"""Pictures of a capture: ``pystack plot`` draws a TCP connection's time-sequence graph as SVG."""
