"""Requests as they arrive: parsed into commands, validated, strict JSON."""
