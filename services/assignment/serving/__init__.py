"""Serving half of the assignment service: the in-memory config snapshot, the assign
endpoints and the exposure events (see ``docs/assignment.md``)."""
