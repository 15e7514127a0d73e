"""pystack: a userspace TCP/IP stack in Python, spoken over a Linux TAP device.

The protocol core is sans-I/O (see :mod:`pystack.stack`); only :mod:`pystack.link`
touches file descriptors.
"""

__version__ = "0.1.0"
