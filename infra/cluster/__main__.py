"""``python -m infra.cluster kafka [PORT]``: run a local tansu Kafka broker in the foreground until Ctrl-C."""

from __future__ import annotations

import sys

from infra.cluster.kafka_broker import main as kafka_main


def main(argv: list[str]) -> int:
    if not argv or argv[0] != "kafka":
        print("usage: python -m infra.cluster kafka [PORT]   (a local tansu broker, memory only)", file=sys.stderr)
        return 2
    return kafka_main(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
