"""Memories: the service, recall (candidates, ranking, semantic, lexical) and reads over them."""
