"""Runbooks: remediation rules written as YAML, run as agents under policy. Shell.

``loader`` reads and checks a directory, ``model`` matches events and renders plans,
``watch`` hot-reloads the directory into a running runtime, ``cases`` runs the test cases
written beside the runbooks.
"""
