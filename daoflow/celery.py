"""The Celery application: `celery -A daoflow worker` runs a deployment worker."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "daoflow.settings")

app = Celery("daoflow")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
