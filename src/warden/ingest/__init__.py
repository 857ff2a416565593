"""Data plane: schemas, quality gates and quarantine, probes."""
