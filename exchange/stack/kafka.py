"""One KRaft Kafka node (broker + controller) run from Maven Central's jars, under `.stack/kafka/`."""

from __future__ import annotations

import contextlib
import logging
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from kafka import KafkaAdminClient
from kafka.errors import KafkaError

from exchange.exceptions import StackError
from exchange.settings import StackSettings
from exchange.stack.processes import (
    ensure_port_free,
    process_mentions,
    read_pid,
    run,
    terminate,
    wait_until,
)

_LOG4J2 = """\
status = warn
appender.file.type = RollingFile
appender.file.name = FILE
appender.file.fileName = {log}
appender.file.filePattern = {log}.%i
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 10MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 3
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
logger.kafka.name = kafka
logger.kafka.level = WARN
logger.apache.name = org.apache.kafka
logger.apache.level = WARN
"""

_SERVER = """\
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{controller_port}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}
advertised.listeners=PLAINTEXT://127.0.0.1:{port}
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs={data}
num.partitions=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
log.retention.hours=-1
"""


@contextlib.contextmanager
def _quiet(logger_name: str) -> Iterator[None]:
    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


@dataclass(frozen=True)
class KafkaNode:
    """The local broker's files and how to start, check and stop it."""

    settings: StackSettings

    @property
    def home(self) -> Path:
        return self.settings.home.resolve() / "kafka"

    @property
    def pid_file(self) -> Path:
        return self.home / "kafka.pid"

    @property
    def log_file(self) -> Path:
        return self.home / "server.log"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.settings.kafka_port}"

    def classpath(self) -> str:
        """Resolve the broker's jars through Maven once; later calls read the cached classpath."""
        cached = self.home / f"classpath-{self.settings.kafka_version}.txt"
        if cached.exists() and all(Path(jar).exists() for jar in cached.read_text().split(":")):
            return cached.read_text().strip()
        self.home.mkdir(parents=True, exist_ok=True)
        pom = self.home / "pom.xml"
        pom.write_text(resources.files("exchange.stack").joinpath("pom.xml").read_text())
        run(
            [
                "mvn",
                "-q",
                "-B",
                "-f",
                str(pom),
                f"-Dkafka.version={self.settings.kafka_version}",
                "dependency:build-classpath",
                "-Dmdep.includeScope=runtime",
                f"-Dmdep.outputFile={cached}",
            ],
            what=f"fetching Kafka {self.settings.kafka_version} through Maven (is `mvn` installed?)",
        )
        return cached.read_text().strip()

    def _java(self, classpath: str, *args: str, heap: str | None = None) -> list[str]:
        memory = [f"-Xmx{heap}", f"-Xms{heap}"] if heap else ["-Xmx256m"]
        return [
            "java",
            *memory,
            "-cp",
            classpath,
            f"-Dlog4j2.configurationFile={self.home / 'log4j2.properties'}",
            *args,
        ]

    def _configure(self) -> Path:
        config = self.home / "server.properties"
        config.write_text(
            _SERVER.format(
                port=self.settings.kafka_port,
                controller_port=self.settings.kafka_controller_port,
                data=self.home / "data",
            )
        )
        (self.home / "log4j2.properties").write_text(_LOG4J2.format(log=self.log_file))
        return config

    def _format(self, classpath: str, config: Path) -> None:
        """Format the storage once; an unformatted node fails with 'No readable meta.properties'."""
        if (self.home / "data" / "meta.properties").exists():
            return
        cluster_id = (
            run(
                self._java(classpath, "kafka.tools.StorageTool", "random-uuid"),
                what="generating a Kafka cluster id",
            )
            .strip()
            .splitlines()[-1]
        )
        run(
            self._java(classpath, "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(config)),
            what="formatting the Kafka storage",
        )

    def start(self) -> None:
        """Start the broker in the background unless it runs already; return once it answers."""
        if self.running_pid() is not None:
            self.wait_ready()
            return
        ensure_port_free(self.settings.kafka_port, "Kafka", "EXCHANGE_STACK__KAFKA_PORT")
        ensure_port_free(
            self.settings.kafka_controller_port, "Kafka's controller", "EXCHANGE_STACK__KAFKA_CONTROLLER_PORT"
        )
        classpath = self.classpath()
        config = self._configure()
        self._format(classpath, config)
        with open(self.home / "stdout.log", "ab") as out:
            process = subprocess.Popen(
                self._java(classpath, "kafka.Kafka", str(config), heap=self.settings.kafka_heap),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.pid_file.write_text(str(process.pid))
        self.wait_ready(process)

    def wait_ready(self, process: subprocess.Popen[bytes] | None = None) -> None:
        """Poll with an admin call until the broker answers, or fail with its log's tail."""

        def ready() -> bool:
            if process is not None and process.poll() is not None:
                raise StackError(
                    f"Kafka exited with {process.returncode}; see {self.log_file} "
                    f"and {self.home / 'stdout.log'}"
                )
            return self.healthy()

        if not wait_until(ready, self.settings.ready_timeout_seconds, poll=0.5):
            raise StackError(f"Kafka did not answer on {self.address}; see {self.log_file}")

    def healthy(self) -> bool:
        """Whether the broker answers a describe-cluster admin call."""
        # While the broker starts, every refused connection is logged at ERROR: expected, so quiet.
        with _quiet("kafka"):
            return self._describe_cluster()

    def _describe_cluster(self) -> bool:
        try:
            admin = KafkaAdminClient(bootstrap_servers=self.address, request_timeout_ms=3000)
        except KafkaError:
            return False
        try:
            admin.describe_cluster()
            return True
        except KafkaError:
            return False
        finally:
            admin.close()

    def running_pid(self) -> int | None:
        """The broker's pid if the broker this stack started is running."""
        pid = read_pid(self.pid_file)
        if pid is None or not process_mentions(pid, str(self.home / "server.properties")):
            return None
        return pid

    def stop(self) -> None:
        """Stop the broker this stack started (controlled shutdown on SIGTERM), and only it."""
        pid = self.running_pid()
        if pid is not None:
            terminate(pid, grace_seconds=60.0)
        self.pid_file.unlink(missing_ok=True)
