"""Sync with peers: vector clocks, ``sync/since`` and ``sync/push``."""
