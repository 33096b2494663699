from accounts import scopes
from accounts.permissions import require_scope
from daoflow.command import DaoflowCommand
from daoflow.errors import InvalidInput
from deployments import actions
from deployments.models import Deployment
from deployments.plan import latest_succeeded, plan_rollback
from deployments.serializers import DeploymentSerializer
from services.lookup import find_service

from ._deployment_output import DeploymentOutputMixin, render_changes

DEFAULT_LIMIT = 10


class Command(DeploymentOutputMixin, DaoflowCommand):
    help = ("Roll a service back: without --target, list its recent succeeded deployments; with "
            "--target ID, queue a new deployment of that deployment's recorded input (image, compose "
            "files, environment values as they were).")
    mutating = True

    def add_command_arguments(self, parser):
        parser.add_argument("--service", required=True, help="Service to roll back.")
        parser.add_argument("--project", help="Project of the service, when its name is in several projects.")
        parser.add_argument("--target", help="Id of the succeeded deployment to roll back to.")
        parser.add_argument("--limit", type=int, default=DEFAULT_LIMIT,
                            help=f"How many succeeded deployments to list (default {DEFAULT_LIMIT}).")
        parser.add_argument("--wait", action="store_true",
                            help="Follow the rollback until it ends; exit 1 if it did not succeed.")
        parser.add_argument("--idempotency-key", default="",
                            help="Requests with the same key and input return the same deployment.")

    def run(self, principal, **options):
        service = find_service(principal, options["service"], options.get("project"))
        if not options.get("target"):
            data = self._candidates(principal, service, options["limit"])
            if options["dry_run"]:
                self.dry_run_done(data)
            return data

        target = _find_target(service, options["target"])
        if options["dry_run"]:
            self.dry_run_done({"rollback": plan_rollback(principal, service, target)})
        self.confirm(options, f"Roll {service} back to deployment {target.pk}")
        deployment = actions.rollback(principal, service, target, idempotency_key=options["idempotency_key"])
        return self.deployment_result(deployment, wait=options["wait"])

    def _candidates(self, principal, service, limit: int) -> dict:
        require_scope(principal, scopes.DEPLOY_READ, service)
        if limit < 1:
            raise InvalidInput(f"--limit: {limit} is not a positive number of deployments.", field="limit")
        succeeded = (
            Deployment.objects.filter(service=service, conclusion=Deployment.CONCLUSION_SUCCEEDED)
            .select_related("service__project", "server").prefetch_related("steps")
            .order_by("-created_at", "-id")[:limit]
        )
        current = latest_succeeded(service)
        return {
            "service": str(service),
            "current_deployment": current.pk if current is not None else None,
            "targets": DeploymentSerializer(succeeded, many=True).data,
        }

    def render(self, data):
        if "targets" in data:
            self._render_candidates(data)
        elif data.get("dry_run"):
            preview = data["rollback"]
            self.stdout.write(f"Rollback of {preview['service']} to deployment {preview['target']} "
                              f"on server {preview['server']['name']}")
            self.stdout.write(f"  steps: {', '.join(preview['steps'])}")
            current = preview["current_deployment"]
            render_changes(self.stdout.write, preview["changes"],
                           f"  changes against deployment {current}:" if current else "  changes:")
            self.stdout.write("Dry run: nothing was queued.")
        else:
            self.render_deployment(data["deployment"])

    def _render_candidates(self, data):
        if not data["targets"]:
            self.stdout.write(f"{data['service']} has no succeeded deployment to roll back to.")
            return
        self.stdout.write(f"Succeeded deployments of {data['service']}, newest first:")
        for deployment in data["targets"]:
            marker = "  (current)" if deployment["id"] == data["current_deployment"] else ""
            self.stdout.write(f"{deployment['id']:>6}  {deployment['created_at']}  {deployment['trigger']:<8} "
                              f"by {deployment['actor']}{marker}")
        self.stdout.write(f"Roll back with: daoflow rollback --service {data['service'].split('/')[-1]} "
                          "--target ID --yes")


def _find_target(service, value: str) -> Deployment:
    try:
        number = int(value)
    except ValueError:
        raise InvalidInput(f"--target: {value!r} is not a deployment id (a number).", field="target") from None
    target = (
        Deployment.objects.select_related("service__project", "server")
        .filter(service=service, pk=number).first()
    )
    if target is None:
        raise InvalidInput(
            f"--target: deployment {number} is not a deployment of {service}; list the ones you can roll "
            f"back to with `daoflow rollback --service {service.name}`.",
            field="target",
        )
    return target
