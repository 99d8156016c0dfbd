"""The project's wiring: settings, urls, the Celery app, WSGI. No domain code lives here."""

from .celery import app as celery_app

__all__ = ["celery_app"]
