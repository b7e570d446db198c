"""The write path every domain shares: the EventWriter, its chain, pipeline, outcomes, quorums."""
