"""Lifecycle: archive, consolidation, promotion, sessions, messages, the curator."""
