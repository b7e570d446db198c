"""The outside world: log adapters, databases, local cluster launchers. Depends on ``schemas`` only."""
