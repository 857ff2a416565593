"""The web console: server-rendered pages with htmx, served beside the API. Edge (web).

:func:`~warden.web.app.create_app` builds the one application (API and console); pages
live in ``templates/``, the vendored htmx and the console's script in ``static/``. No
build step.
"""
