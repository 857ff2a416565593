"""Control plane: Cedar policy as code, guardrails, the decision gate."""
