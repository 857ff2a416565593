"""Event store adapters: SQLite (embedded default), PostgreSQL (shared). Store adapters.

Both pass one contract suite; ``snapshots`` and ``group_commit`` work on either.
"""
