"""Deterministic replay: ``pystack run --record FILE`` writes down everything that enters the sans-I/O core
(pystack.replay.record), and ``pystack replay FILE`` runs the core again from it on a fake clock, checking
that every frame it sends is the recorded one (pystack.replay.replay). The file format is in
pystack.replay.format."""
