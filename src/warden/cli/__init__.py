"""Command line: ``warden run``, ``warden demo``, ``warden incidents``, ``warden audit``."""
