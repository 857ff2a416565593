"""Decisioning plane: the agent protocol and built-in agents."""
