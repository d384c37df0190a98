"""Assignment service: the control API (schemas, versions, variants, experiments) and
the ``assign`` hot path served from an in-memory config snapshot."""
