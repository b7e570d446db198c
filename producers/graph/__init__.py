"""The knowledge graph: links, traversals, entities, contradiction candidates."""
