"""The HTTP API: incidents, approvals, controls, quarantine, audit and KPIs. Edge (API).

:func:`~warden.api.app.create_api` builds the FastAPI application over a store; every
route names the permission it needs (:mod:`warden.api.auth`), and
:class:`~warden.api.server.ApiServer` serves it on a socket beside ``warden run``.
"""
