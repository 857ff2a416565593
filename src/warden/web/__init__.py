"""The web console: server-rendered pages with htmx, served beside the API. Edge (web).

:func:`~warden.web.app.create_app` builds the one application (API and console); pages
live in ``templates/``; ``static/`` holds htmx 2.0.11 (vendored unmodified, 0BSD
licence) and the console's one script. No build step.
"""
