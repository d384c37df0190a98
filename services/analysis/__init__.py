"""Analysis service: performance and experiment results computed on demand from the
hourly aggregates in PostgreSQL (see ``docs/analysis.md``)."""
