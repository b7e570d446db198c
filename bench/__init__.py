"""Benchmarks of the event-sourced node against a plain SQLite + FTS5 baseline (see ``bench/README.md``)."""

from __future__ import annotations
