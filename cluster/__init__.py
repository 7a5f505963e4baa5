"""cluster: sharding of entities across one process or many nodes (NATS + a shared journal)."""

__all__: list[str] = []
