"""Wire formats: parse and build each header, validating lengths and checksums.

Parsers take ``bytes``/``memoryview`` and raise :class:`WireError` with a short reason on bad
input; builders return ``bytes``. Nothing here keeps state.
"""

from pystack.wire.errors import WireError

__all__ = ["WireError"]
