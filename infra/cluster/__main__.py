"""``python -m infra.cluster kafka [PORT]``: run a local tansu Kafka broker in the foreground until Ctrl-C.
``python -m infra.cluster postgres DIR [DATABASE]``: a local Postgres 18 + pgvector in DIR; prints its URL."""

from __future__ import annotations

import sys

from infra.cluster.kafka_broker import main as kafka_main
from infra.cluster.postgres_server import main as postgres_main

_USAGE = ("usage: python -m infra.cluster kafka [PORT]            (a local tansu broker, memory only)\n"
          "       python -m infra.cluster postgres DIR [DATABASE]  (a local Postgres + pgvector, data in DIR)")


def main(argv: list[str]) -> int:
    if argv and argv[0] == "kafka":
        return kafka_main(argv[1:])
    if argv and argv[0] == "postgres":
        return postgres_main(argv[1:])
    print(_USAGE, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
