"""Output shared by the deployment commands: following a deployment, and printing plans and changes.

The leading underscore keeps Django from listing this module as a command.
"""

import difflib

from daoflow.command import EXIT_ERROR
from deployments.follow import follow
from deployments.models import Deployment
from deployments.serializers import DeploymentSerializer


class DeploymentOutputMixin:
    """For DaoflowCommand subclasses that queue a deployment and may follow it with --wait."""

    def deployment_result(self, deployment: Deployment, *, wait: bool, **extra) -> dict:
        """Follow the deployment if asked, and return the command's data; exit 1 if it did not succeed."""
        if wait:
            if not self._json:
                self.stdout.write(f"Deployment {deployment.pk} of {deployment.service} queued; following it.")
            deployment = follow(deployment.pk, on_line=self._print_line, on_step=self._print_step)
        data = {"deployment": DeploymentSerializer(reload(deployment)).data, **extra}
        if wait and deployment.conclusion != Deployment.CONCLUSION_SUCCEEDED:
            self.succeed_then_fail(data)
        return data

    def succeed_then_fail(self, data):
        # The deployment record is the output either way; the exit code
        # lets scripts detect that it did not succeed.
        if self._json:
            self.emit_json({"ok": False, "error": failure_sentence(data["deployment"]),
                            "code": "DEPLOYMENT_FAILED", "data": data})
        else:
            self.render(data)
        raise SystemExit(EXIT_ERROR)

    def _print_line(self, line):
        if not self._json:
            step = line.step.name if line.step else "-"
            self.stdout.write(f"  [{step}] {line.text}")

    def _print_step(self, step):
        if not self._json and step.status != "pending":
            self.stdout.write(f"step {step.name}: {step.status}")

    def render_deployment(self, deployment: dict) -> None:
        outcome = deployment["conclusion"] or deployment["status"]
        rollback = f" (rollback to deployment {deployment['rollback_of']})" if deployment["rollback_of"] else ""
        self.stdout.write(f"Deployment {deployment['id']} of {deployment['project']}/{deployment['service']} "
                          f"to {deployment['server']}{rollback}: {outcome}")
        if deployment["failure_reason"]:
            self.stdout.write(f"  failed in {deployment['failed_step']}: {deployment['failure_reason']}")
        if deployment["cancelled_by"]:
            self.stdout.write(f"  cancelled by {deployment['cancelled_by']}")


def failure_sentence(deployment: dict) -> str:
    if deployment["conclusion"] == "cancelled":
        return f"Deployment {deployment['id']} was cancelled by {deployment['cancelled_by'] or 'someone'}."
    return (f"Deployment {deployment['id']} failed in step {deployment['failed_step'] or '?'}: "
            f"{deployment['failure_reason']}")


def reload(deployment: Deployment) -> Deployment:
    return Deployment.objects.select_related("service__project", "server").prefetch_related("steps").get(
        pk=deployment.pk
    )


def render_plan(write, plan: dict) -> None:
    server = plan["server"]
    write(f"Plan for {plan['service']} ({plan['environment']}) on server {server['name']} ({server['address']})")
    source = dict(plan["source"])
    write(f"  source: {source.pop('type')}")
    for key, value in source.items():
        if value:
            write(f"    {key}: {value}")
    write(f"  steps:  {', '.join(plan['steps'])}")
    write("  checks:")
    for check in plan["checks"]:
        write(f"    {check['status']:<8} {check['name']}: {check['detail']}")
    write("  ready:  " + ("yes" if plan["ready"] else "no, fix the failed checks first"))
    current = plan["current_deployment"]
    against = f"deployment {current}" if current else "nothing deployed yet"
    render_changes(write, plan["changes"], f"  changes against {against}:")


def render_changes(write, changes: list[dict], heading: str) -> None:
    if not changes:
        write(f"{heading} none")
        return
    write(heading)
    for change in changes:
        field = change["field"]
        if field == "compose_document" and change["before"] and change["after"]:
            write(f"    {field}:")
            lines = difflib.unified_diff(
                change["before"].splitlines(), change["after"].splitlines(),
                "before", "after", lineterm="",
            )
            for line in lines:
                write(f"      {line}")
            continue
        write(f"    {field}: {_shown(change['before'])} -> {_shown(change['after'])}")


def _shown(value) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, list):
        return "[" + ", ".join(str(item) for item in value) + "]"
    text = str(value)
    return text if "\n" not in text else f"({len(text.splitlines())} lines)"
