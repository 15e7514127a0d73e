"""Unit tests of pystack.ip6 (a package so that its module names cannot collide with other test folders)."""
