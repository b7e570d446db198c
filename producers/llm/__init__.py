"""The LLM client shared by the tools and the curator (Ollama-compatible)."""
