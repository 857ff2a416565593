"""Golden histories: recorded inputs, configuration and decisions, replayed against the code."""
