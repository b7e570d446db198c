"""Session fixtures. Servers (nats-server, ...) are started here on free loopback ports, never assumed."""

from __future__ import annotations
