"""Following a deployment from the command line until it ends."""

import time

from .models import Deployment, DeploymentLogLine

# Two small queries per poll; a shorter interval reports the end of a
# deployment sooner (bench/deploy_overhead.py measures it).
POLL_SECONDS = 0.2


def follow(deployment_id: int, on_line, on_step, timeout: float | None = None) -> Deployment:
    """Report new steps states and log lines until the deployment completes; return it."""
    last_line = 0
    step_states: dict[str, str] = {}
    deadline = time.monotonic() + timeout if timeout else None
    while True:
        deployment = Deployment.objects.get(pk=deployment_id)
        changed = [step for step in deployment.steps.all() if step_states.get(step.name) != step.status]
        lines = list(
            DeploymentLogLine.objects.filter(deployment_id=deployment_id, pk__gt=last_line)
            .select_related("step").order_by("pk")[:500]
        )
        # Steps that started come before the lines, steps that ended after
        # them, so a step's output reads between its start and its outcome.
        started = [step for step in changed if step.status == "running"]
        for step in started:
            step_states[step.name] = step.status
            on_step(step)
        for line in lines:
            on_line(line)
            last_line = line.pk
        for step in changed:
            if step not in started:
                step_states[step.name] = step.status
                on_step(step)
        if deployment.is_finished and len(lines) < 500:
            return deployment
        if deadline is not None and time.monotonic() > deadline:
            return deployment
        if len(lines) < 500:
            time.sleep(POLL_SECONDS)
