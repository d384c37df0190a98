"""The ``make demo`` driver: ``python -m deploy.demo`` (see :mod:`deploy.demo.main`)."""
