"""The node and its wiring: composition root, ``serve``, the listener's TLS, running servers."""
