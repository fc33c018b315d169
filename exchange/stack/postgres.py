"""A PostgreSQL cluster owned by the project under `.stack/postgres/`, from the system's binaries.

`initdb` refuses root, so as root every server command runs as the `postgres` user, who owns the
cluster's folder. Connections: a Unix socket in the cluster's folder, trusted (no password) and so
private to the cluster's owner and root (its folder is mode 0700), for administration and for the
exchange's processes on this machine (`PostgresSettings.socket_dir`); TCP on 127.0.0.1 with a password
for the rest.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from exchange.exceptions import StackError
from exchange.settings import REGISTRY_DATABASE, PostgresSettings, StackSettings, stack_socket_dir
from exchange.stack.processes import as_postgres_user, ensure_port_free, run


def find_bindir(configured: Path | None) -> Path:
    """The folder with initdb and pg_ctl: configured, else Debian's newest /usr/lib/postgresql/N/bin."""
    if configured is not None:
        candidates = [configured]
    else:
        versions = sorted(
            Path("/usr/lib/postgresql").glob("*/bin"),
            key=lambda path: int(path.parent.name) if path.parent.name.isdigit() else 0,
        )
        candidates = list(reversed(versions))
        found = shutil.which("initdb")
        if found:
            candidates.append(Path(found).resolve().parent)
    for folder in candidates:
        if (folder / "initdb").exists() and (folder / "pg_ctl").exists():
            return folder
    raise StackError(
        "PostgreSQL server binaries not found: run `make postgres` "
        "(installs Debian's `postgresql` package) or set EXCHANGE_STACK__POSTGRES_BINDIR"
    )


# PostgreSQL's limit on a Unix socket's path (sockaddr_un.sun_path, less its terminating NUL).
SOCKET_PATH_LIMIT = 107


def check_socket_path(socket_dir: Path, port: int) -> None:
    """`StackError` when the server's socket in `socket_dir` would be a longer path than PostgreSQL
    accepts: it would refuse to start, naming only the path, from a clone deep in the file system."""
    path = socket_dir / f".s.PGSQL.{port}"
    if len(os.fsencode(path)) > SOCKET_PATH_LIMIT:
        raise StackError(
            f"PostgreSQL's socket would be {path}, longer than the {SOCKET_PATH_LIMIT} bytes a socket "
            "path may have: set EXCHANGE_STACK__HOME to a shorter folder (e.g. /tmp/exchange-stack), "
            "or clone the repository higher up"
        )


@dataclass(frozen=True)
class PostgresCluster:
    """The project's cluster: where it lives, and how to create, start, check and stop it."""

    settings: StackSettings
    database: PostgresSettings

    @property
    def home(self) -> Path:
        return self.settings.home.resolve() / "postgres"

    @property
    def data(self) -> Path:
        return self.home / "data"

    @property
    def socket_dir(self) -> Path:
        """Where the server puts its socket, and where the exchange's processes connect by default."""
        return stack_socket_dir(self.settings.home)

    def _tool(self, name: str) -> str:
        return str(find_bindir(self.settings.postgres_bindir) / name)

    def _prepare_folder(self) -> None:
        check_socket_path(self.socket_dir, self.settings.postgres_port)
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        # The socket trusts whoever reaches it: only the cluster's owner (and root) may.
        self.socket_dir.chmod(0o700)
        if os.geteuid() == 0:
            run(["chown", "-R", "postgres:postgres", str(self.home)], what="giving the cluster to postgres")
            self._check_reachable()

    def _check_reachable(self) -> None:
        """As root the server runs as `postgres`, who must be able to enter every folder above the
        cluster's: under a folder closed to other users (/root is 0700) initdb failed with a bare
        "permission denied"."""
        try:
            run(as_postgres_user(["test", "-w", str(self.home)]), what="checking the cluster's folder")
        except StackError as exc:
            raise StackError(
                f"the postgres user, who runs the server, cannot write {self.home}: a folder above it is "
                "closed to other users (as /root is). Clone the repository where other users may enter, "
                "or set EXCHANGE_STACK__HOME to such a folder (e.g. /srv/exchange-stack)"
            ) from exc

    def initialise(self) -> None:
        """Create the cluster once; trust on the private socket, passwords over TCP."""
        if (self.data / "PG_VERSION").exists():
            return
        self._prepare_folder()
        run(
            as_postgres_user(
                [
                    self._tool("initdb"),
                    "-D",
                    str(self.data),
                    "-U",
                    "postgres",
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                    "-E",
                    "UTF8",
                    "--locale=C.UTF-8",
                ]
            ),
            what="initdb",
        )

    def start(self) -> None:
        """Start the server (waiting until it accepts connections), then ensure role and databases."""
        self.initialise()
        if not self.running():
            ensure_port_free(self.settings.postgres_port, "PostgreSQL", "EXCHANGE_STACK__POSTGRES_PORT")
            self._prepare_folder()
            options = (
                f"-p {self.settings.postgres_port} -k {self.socket_dir} -c listen_addresses=127.0.0.1 "
                "-c shared_buffers=256MB -c max_connections=200 -c fsync=on"
            )
            run(
                as_postgres_user(
                    [
                        self._tool("pg_ctl"),
                        "-D",
                        str(self.data),
                        "-l",
                        str(self.home / "server.log"),
                        "-o",
                        options,
                        "-w",
                        "-t",
                        str(int(self.settings.ready_timeout_seconds)),
                        "start",
                    ]
                ),
                what=f"starting PostgreSQL (its log, for root or postgres: {self.home / 'server.log'})",
            )
        self._ensure_role_and_databases()

    def _admin(self) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(
            host=str(self.socket_dir),
            port=self.settings.postgres_port,
            user="postgres",
            dbname="postgres",
            autocommit=True,
        )

    def _ensure_role_and_databases(self) -> None:
        password = self.database.password.get_secret_value()
        with self._admin() as admin:
            exists = admin.execute(
                "SELECT 1 FROM pg_roles WHERE rolname = %s", (self.database.user,)
            ).fetchone()
            verb = sql.SQL("ALTER") if exists else sql.SQL("CREATE")
            admin.execute(
                sql.SQL("{} ROLE {} LOGIN CREATEDB PASSWORD {}").format(
                    verb, sql.Identifier(self.database.user), sql.Literal(password)
                )
            )
            # DROP DATABASE … WITH (FORCE) (tests, the demo's reset) must be able to end an autovacuum
            # worker busy in that database; only pg_signal_backend members may, short of superuser.
            admin.execute(sql.SQL("GRANT pg_signal_backend TO {}").format(sql.Identifier(self.database.user)))
            for name in (self.database.database, REGISTRY_DATABASE):
                if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
                    admin.execute(
                        sql.SQL("CREATE DATABASE {} OWNER {}").format(
                            sql.Identifier(name), sql.Identifier(self.database.user)
                        )
                    )

    def running(self) -> bool:
        """Whether pg_ctl reports the cluster's server running."""
        if not (self.data / "PG_VERSION").exists():
            return False
        try:
            run(
                as_postgres_user([self._tool("pg_ctl"), "-D", str(self.data), "status"]), what="pg_ctl status"
            )
        except StackError:
            return False
        return True

    def version(self) -> str | None:
        """The server's version, asked over TCP with the exchange's role and password (the socket trusts
        without one): None when it does not answer."""
        try:
            with psycopg.connect(self.database.over_tcp().conninfo(), connect_timeout=3) as conn:
                row = conn.execute("SHOW server_version").fetchone()
        except psycopg.Error:
            return None
        return str(row[0]) if row else None

    def stop(self) -> None:
        """Stop the cluster this stack started (fast shutdown: sessions end, data is safe)."""
        if self.running():
            run(
                as_postgres_user([self._tool("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"]),
                what="stopping PostgreSQL",
            )
