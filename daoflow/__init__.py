"""DaoFlow: a self-hosted deployment control plane for Docker Compose targets."""

from .celery import app as celery_app

__all__ = ["celery_app"]
