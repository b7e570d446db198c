"""Example consumers of the ai-memory log written with stream-processing tools (not imported by ai-memory)."""
