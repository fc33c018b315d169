"""One frozen settings object per process, read from `EXCHANGE_*` variables in `main` and passed down."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from psycopg.conninfo import make_conninfo
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_FROZEN = ConfigDict(frozen=True)
# The department registry's database the property connector polls, simulated in the stack's cluster.
REGISTRY_DATABASE = "registry"
# How a server on this machine is named: the stack's, reached through its socket by default.
LOCAL_HOSTS = ("127.0.0.1", "localhost")


class KafkaSettings(BaseModel):
    """Where the brokers are and how the exchange's topics are laid out."""

    model_config = _FROZEN

    bootstrap_servers: str = "127.0.0.1:19092"
    # Every subject topic has this partition count, so they are co-partitioned for the join.
    subject_partitions: int = 4
    replication_factor: int = 1
    # Prepended to every topic and group name; tests use a random one so they never see each other.
    topic_prefix: str = ""


class PostgresSettings(BaseModel):
    """The exchange's own PostgreSQL database."""

    model_config = _FROZEN

    host: str = "127.0.0.1"
    port: int = 15432
    database: str = "exchange"
    user: str = "exchange"
    password: SecretStr = SecretStr("exchange")
    pool_min: int = 1
    pool_max: int = 8
    # The folder of the server's Unix socket when it runs on this machine (the stack's, by default, when
    # `host` and `port` are the stack's): connections go through the socket, and through `host` only
    # when no server listens there. A query costs the client less CPU than over loopback TCP (`exchange
    # bench postgres`: 0.84 of it here, 59–63 µs against 72–74 µs) and is answered sooner.
    socket_dir: Path | None = None

    @field_validator("socket_dir", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        """`EXCHANGE_POSTGRES__SOCKET_DIR=` (empty): no socket, TCP only."""
        return None if value == "" else value

    @field_validator("socket_dir")
    @classmethod
    def _absolute_socket_dir(cls, value: Path | None) -> Path | None:
        if value is not None and (not value.is_absolute() or "," in str(value)):
            raise ValueError(
                f"{value} is not a folder libpq can take as a socket's: give an absolute path without commas"
            )
        return value

    def conninfo(self, database: str | None = None) -> str:
        """A libpq connection string, with the password: the socket first (`socket_dir`), then `host`.
        The socket only for a server on this machine: a copy of these settings given another `host`
        reaches that host, not a local server that happens to listen at the socket."""
        local = self.socket_dir is not None and self.host in LOCAL_HOSTS
        hosts = f"{self.socket_dir},{self.host}" if local else self.host
        return make_conninfo(
            host=hosts,
            port=self.port,
            dbname=database or self.database,
            user=self.user,
            password=self.password.get_secret_value(),
        )

    def over_tcp(self) -> PostgresSettings:
        """These settings without the socket: connections go to `host` over TCP, with the password."""
        return self.model_copy(update={"socket_dir": None})

    def url(self, database: str | None = None) -> str:
        """A postgresql:// URL without the password, for display."""
        return f"postgresql://{self.user}@{self.host}:{self.port}/{database or self.database}"


class StackSettings(BaseModel):
    """The local Kafka and PostgreSQL that `exchange stack up` runs without Docker."""

    model_config = _FROZEN

    home: Path = Path(".stack")
    kafka_version: str = "4.3.1"
    kafka_port: int = 19092
    kafka_controller_port: int = 19093
    kafka_heap: str = "512m"
    postgres_port: int = 15432
    # Debian's layout; `pg_config --bindir` is consulted first.
    postgres_bindir: Path | None = None
    ready_timeout_seconds: float = 90.0


class ConnectorSettings(BaseModel):
    """How connectors read, batch and remember their position."""

    model_config = _FROZEN

    # Positions live here, one small JSON document per connector and source.
    state_dir: Path = Path(".stack/connectors")
    # Records per acknowledged chunk: the position is saved after the broker acknowledged a chunk.
    chunk_records: int = 20_000
    # Processes preparing a large export (parse, convert, encode), taking its chunks in turn: preparing
    # costs more than sending, so with one the sending main process waits on it.
    preparing_workers: int = Field(default=2, ge=1)
    follow_interval_seconds: float = 1.0
    # The property connector reads a registry change once it is this old on the registry's clock: a
    # change stamped when its transaction began is seen only once that commits (connectors.table).
    registry_settle_seconds: float = Field(default=5.0, ge=0.0)
    # The 不动产登记中心's database the property connector polls when no DSN is given.
    registry_dsn: SecretStr = SecretStr(
        f"host=127.0.0.1 port=15432 dbname={REGISTRY_DATABASE} user=exchange password=exchange"
    )
    linger_ms: int = 20
    compression: str = "lz4"


class ProcessorSettings(BaseModel):
    """The faust processor that folds events into profiles."""

    model_config = _FROZEN

    app_id: str = "exchange-processor"
    datadir: Path = Path(".stack/processor")
    store: str = "rocksdb://"
    # A batch is folded when it holds this many events or this much time passed, whichever is first.
    batch_events: int = 5000
    batch_seconds: float = 0.05
    web_port: int = 6066
    commit_interval_seconds: float = 1.0
    # The producer (profiles and the changelog) waits this long to fill batches of up to this many bytes:
    # faust's defaults (no wait, 16 KiB) sent a produce request for every few profiles.
    producer_linger_seconds: float = 0.02
    producer_batch_bytes: int = 512 * 1024
    # How long a commit waits for the broker to acknowledge what was produced before it; then the
    # processor stops (and its restart replays) rather than commit past records that may be lost.
    delivery_timeout_seconds: float = 120.0
    # How long the group waits for a member that stopped heart-beating (a killed worker) before its
    # partitions go to the others or to its restart; faust's 60 s stalled folding for a minute after
    # each crash. Heartbeats go every 3 s, on an event loop no fold batch holds for more than about 1 s.
    session_timeout_seconds: float = 10.0
    # The longest a fetch waits at the broker for data (faust's 1.5 s): records of a busy partition wait
    # behind a fetch held for the quiet ones (exchange.ordered_consumer), so this bounds that delay.
    fetch_max_wait_seconds: float = 0.05
    # How often Python's full garbage collection runs, between batches (exchange.gc_pacing):
    # left to CPython, it paused the fold for 0.1 to 0.5 s every few seconds and found nothing.
    full_collection_interval_seconds: float = 300.0


class ApiSettings(BaseModel):
    """The HTTP API for approval services, and the approvals (秒批) consumer beside it."""

    model_config = _FROZEN

    host: str = "127.0.0.1"
    port: int = 8080
    # The Ed25519 key proofs are signed with: generated into this file on first start (mode 0600)...
    signing_key_path: Path = Path(".stack/api/signing-key.pem")
    # ...unless the PEM itself is given (a secret store's mount or variable); never logged.
    signing_key: SecretStr | None = None
    # The public keys of earlier signing keys (a JWKS, `exchange keys rotate` adds to it): proofs they
    # signed still verify, and /v1/keys publishes them.
    retired_keys_path: Path = Path(".stack/api/retired-keys.json")
    # Policy files (callers.json, grants.json, proof_types.json, service_items.json); None: the bundled ones.
    policy_dir: Path | None = None
    pool_min: int = 1
    pool_max: int = 8
    pool_timeout_seconds: float = 10.0
    # The largest request body taken (a 413, audited, past it): read whole before anything else, a body
    # must be bounded. 2 MiB holds the largest proof /v1/proofs/verify accepts (1 MB) twice over.
    max_body_bytes: int = Field(default=2 * 1024 * 1024, ge=1024)
    # How often the audit relay looks for audit rows not yet on exchange.audit.v1.
    audit_relay_interval_seconds: float = 0.5
    # How much nicer than the API its relay process runs (exchange.api.relay_process); 0: as nice as it.
    # No request waits for the relay, but each pass (some 20 ms of CPU for 1,000 entries) took turns on
    # the cores with the requests in flight: on 2 cores at 2,000 verifications/s most latency spells
    # lined up with a pass. Niced, it takes the CPU the requests leave (its lag is exported and alerted).
    audit_relay_niceness: int = Field(default=10, ge=0, le=19)
    # The least time between the starts of two audit batches (exchange.api.appender): while requests keep
    # coming, a batch's fixed cost (about 0.25 ms of the API's CPU) is shared by the requests of this
    # long, for at most this much more latency; after a quiet spell an entry is written at once.
    audit_batch_interval_seconds: float = 0.004
    # Records the approvals consumer takes per poll; it commits offsets after each batch's decisions.
    approvals_batch_records: int = 500
    # The longest the approvals consumer's fetch waits at the broker for data (consumers.approvals).
    approvals_fetch_max_wait_seconds: float = 0.05
    # Subjects whose decoded profile each API process keeps (exchange.api.profile_cache); 0: none.
    profile_cache_entries: int = 2048
    # Mutual TLS (deployment): the header in which the TLS-terminating proxy passes the verified client
    # certificate's subject, mapped to a caller by callers.json `tls_subject`. None: API keys only.
    # Set it only when the API is reachable through that proxy alone, which must overwrite the header.
    tls_subject_header: str | None = None


class MonitoringSettings(BaseModel):
    """Where operators' tools find each process's /metrics: the ports monitoring/prometheus.yml scrapes.

    A connector, the sink and approvals serve /metrics on `metrics_port` (0: not at all); a deployment
    sets each one's `EXCHANGE_METRICS_PORT` to its port here. The processor serves on its faust web
    port, the API on its own port, and `exchange lag-exporter` on `lag_exporter_port`.
    """

    model_config = _FROZEN

    connector_ports: dict[str, int] = Field(
        default_factory=lambda: {"identity": 9101, "tax": 9102, "social": 9103, "property": 9104}
    )
    sink_port: int = 9105
    approvals_port: int = 9106
    # kafka_exporter's port, so a Prometheus set up for it finds the same lag series here.
    lag_exporter_port: int = 9308
    # The longest one /metrics request of `exchange top`, or one Kafka request of a lag scrape, waits.
    scrape_timeout_seconds: float = 1.0
    lag_timeout_seconds: float = 3.0


class ExchangeSettings(BaseSettings):
    """Everything a process of the exchange is configured with."""

    model_config = SettingsConfigDict(
        env_prefix="EXCHANGE_", env_nested_delimiter="__", frozen=True, extra="ignore"
    )

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    postgres: PostgresSettings = Field(default_factory=PostgresSettings)
    stack: StackSettings = Field(default_factory=StackSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    connectors: ConnectorSettings = Field(default_factory=ConnectorSettings)
    processor: ProcessorSettings = Field(default_factory=ProcessorSettings)
    monitoring: MonitoringSettings = Field(default_factory=MonitoringSettings)
    # Keys subjects: HMAC-SHA256 of the normalised identifier. Change it and every key changes.
    subject_secret: SecretStr = SecretStr("local-development-subject-secret")
    metrics_port: int = 0
    log_level: str = "INFO"

    @model_validator(mode="before")
    @classmethod
    def _one_port_per_service(cls, data: Any) -> Any:
        """Each local service's port said once: a port given only for the stack (where it listens) or
        only for its clients (where they connect) is the other's too, and the controller listens next
        to the broker. Set apart, a run on other ports that missed one variable started its own services
        and then used another run's, which accept the same credentials."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        sections = {}
        for name in ("kafka", "postgres", "stack", "connectors"):
            section = data.get(name, {})
            if not isinstance(section, dict):
                return data  # given as a settings object: its fields are explicit already
            sections[name] = dict(section)
        kafka, postgres, stack, connectors = (
            sections[n] for n in ("kafka", "postgres", "stack", "connectors")
        )
        if "kafka_port" in stack and "bootstrap_servers" not in kafka:
            kafka["bootstrap_servers"] = f"127.0.0.1:{stack['kafka_port']}"
        elif "bootstrap_servers" in kafka and "kafka_port" not in stack:
            host, _, port = str(kafka["bootstrap_servers"]).rpartition(":")
            if host in ("127.0.0.1", "localhost") and port.isdigit():
                stack["kafka_port"] = port
        if "kafka_port" in stack and "kafka_controller_port" not in stack:
            stack["kafka_controller_port"] = int(stack["kafka_port"]) + 1
        if "postgres_port" in stack and "port" not in postgres:
            postgres["port"] = stack["postgres_port"]
        elif "port" in postgres and "postgres_port" not in stack:
            stack["postgres_port"] = postgres["port"]
        if "port" in postgres and "registry_dsn" not in connectors:
            connectors["registry_dsn"] = PostgresSettings(**postgres).conninfo(REGISTRY_DATABASE)
        if "socket_dir" not in postgres and _is_the_stacks(postgres, stack):
            socket_dir = stack_socket_dir(Path(stack.get("home", StackSettings().home)))
            if "," not in str(socket_dir):
                postgres["socket_dir"] = str(socket_dir)
        for name, section in sections.items():
            if section:
                data[name] = section
        return data


def stack_socket_dir(home: Path) -> Path:
    """The folder of the stack's PostgreSQL socket (exchange.stack.postgres), for a stack in `home`."""
    return home.resolve() / "postgres" / "run"


def _is_the_stacks(postgres: dict[str, Any], stack: dict[str, Any]) -> bool:
    """Whether the raw PostgreSQL settings name the stack's server: on this machine, at its port."""
    host = str(postgres.get("host", PostgresSettings().host))
    port = str(postgres.get("port", PostgresSettings().port))
    return host in LOCAL_HOSTS and port == str(stack.get("postgres_port", StackSettings().postgres_port))


def as_environment(settings: ExchangeSettings) -> dict[str, str]:
    """The `EXCHANGE_*` variables that rebuild `settings` in a child process (secrets included)."""

    def plain(value: object) -> str:
        if isinstance(value, SecretStr):
            return value.get_secret_value()
        # pydantic-settings reads complex values as JSON.
        return json.dumps(value) if isinstance(value, list | tuple | dict) else str(value)

    variables: dict[str, str] = {}
    for name, value in settings:
        if isinstance(value, BaseModel):
            for field, inner in value:
                if inner is not None:
                    variables[f"EXCHANGE_{name.upper()}__{field.upper()}"] = plain(inner)
        elif value is not None:
            variables[f"EXCHANGE_{name.upper()}"] = plain(value)
    return variables


def child_environment(settings: ExchangeSettings) -> dict[str, str]:
    """The environment of a child process run with `settings`: this process's, `as_environment` over it."""
    return {**os.environ, **as_environment(settings)}


def load_settings() -> ExchangeSettings:
    """Build the settings from the environment; call once, in `main`."""
    return ExchangeSettings()
