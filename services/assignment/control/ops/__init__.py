"""The control plane's operations: rules + SQL, one module per resource.

Mutations take a :class:`~services.assignment.control.uow.UnitOfWork` (one transaction:
lock the schema row first, check the row version, change, audit, queue the config);
queries take a plain connection.
"""
