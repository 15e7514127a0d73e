"""Unit tests of pystack.tcp (a package like the other test folders: helpers are imported relatively)."""
