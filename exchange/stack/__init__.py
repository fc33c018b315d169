"""The local stack: a single-node KRaft Kafka from Maven Central's jars and a PostgreSQL cluster from
the system's binaries, both under the project's `.stack/` folder, started without Docker."""

from exchange.stack.manager import ServiceStatus, down, status, up

__all__ = ["ServiceStatus", "down", "status", "up"]
