"""Fixtures shared by every test."""

import pytest


class RecordedQueue:
    """Stands in for the broker in tests that don't run a worker: records the enqueued ids."""

    def __init__(self):
        self.ids: list[int] = []

    def __call__(self, deployment_id: int) -> None:
        self.ids.append(deployment_id)


@pytest.fixture(autouse=True)
def recorded_queue(request, monkeypatch):
    """Keep tasks away from the broker unless the test runs a real Celery worker."""
    if "celery_worker" in request.fixturenames:
        yield None
        return
    from deployments.tasks import run_deployment

    recorder = RecordedQueue()
    # Patched on the task itself, so every caller is covered however it imported enqueue().
    monkeypatch.setattr(run_deployment, "delay", recorder)
    yield recorder


@pytest.fixture
def system():
    from accounts.principal import SYSTEM

    return SYSTEM
