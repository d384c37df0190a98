"""Shared library of the A/B testing platform: settings, event contracts, topics,
Kafka and PostgreSQL helpers, errors, and the pure logic the services share."""
