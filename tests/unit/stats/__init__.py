"""Unit tests of the pure statistics engine (shared.stats)."""
