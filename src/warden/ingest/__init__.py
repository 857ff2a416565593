"""Data plane: sources (webhook, Alertmanager, JSON lines, NATS), schemas, gates, quarantine."""
