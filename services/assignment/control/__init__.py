"""The control half of the assignment service.

The control API over PostgreSQL (schemas, versions, variants, traffic allocation,
experiment lifecycle, audit history) and the transactional outbox whose relay
publishes each schema's :class:`~shared.events.AssignmentConfig` to the compacted
config topic. The composition root imports :class:`.component.ControlPlane`,
``routes.routers`` and :class:`.settings.ControlSettings`.
"""
