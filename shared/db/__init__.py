"""PostgreSQL helpers: ``pool.create_pool`` and the migration runner ``migrate``."""
