"""Ray actors hosting the engines: ``NamespaceActor`` and ``CoordinatorActor``."""
