"""Streaming aggregator: execution and exposure events from Kafka into PostgreSQL metrics.

See ``docs/aggregator.md`` for the design and the exactly-once argument.
"""
