"""The ``ai-memory`` command line."""
