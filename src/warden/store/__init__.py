"""Event store adapters: SQLite (embedded default)."""
