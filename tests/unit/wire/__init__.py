"""Unit tests of pystack.wire (a package so that its module names cannot collide with other test folders)."""
