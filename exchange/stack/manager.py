"""`exchange stack up | down | status`: the local Kafka and PostgreSQL together."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from exchange.settings import ExchangeSettings
from exchange.stack.kafka import KafkaNode
from exchange.stack.postgres import PostgresCluster


@dataclass(frozen=True)
class ServiceStatus:
    """What `stack status` reports for one service."""

    name: str
    version: str | None
    address: str
    running: bool
    healthy: bool

    def as_dict(self) -> dict[str, object]:
        """For `status --json`."""
        return asdict(self)


def _services(settings: ExchangeSettings) -> tuple[KafkaNode, PostgresCluster]:
    return KafkaNode(settings.stack), PostgresCluster(settings.stack, settings.postgres)


def up(settings: ExchangeSettings) -> None:
    """Start whatever is not running yet; idempotent. Returns once both services answer."""
    kafka, postgres = _services(settings)
    postgres.start()
    kafka.start()


def down(settings: ExchangeSettings) -> None:
    """Stop what `up` started, and nothing else."""
    kafka, postgres = _services(settings)
    kafka.stop()
    postgres.stop()


def status(settings: ExchangeSettings) -> list[ServiceStatus]:
    """Each service with its version, address and health."""
    kafka, postgres = _services(settings)
    kafka_running = kafka.running_pid() is not None
    postgres_version = postgres.version()
    return [
        ServiceStatus(
            name="kafka",
            version=settings.stack.kafka_version,
            address=kafka.address,
            running=kafka_running,
            healthy=kafka_running and kafka.healthy(),
        ),
        ServiceStatus(
            name="postgresql",
            version=postgres_version,
            address=settings.postgres.url(),
            running=postgres.running(),
            healthy=postgres_version is not None,
        ),
    ]
