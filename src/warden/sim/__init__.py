"""Scenario lab: scenarios, a SimPy run of the real core, scoring and the on-call baseline."""
