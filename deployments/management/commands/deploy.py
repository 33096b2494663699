from daoflow.command import EXIT_ERROR, DaoflowCommand
from deployments import actions
from deployments.follow import follow
from deployments.models import Deployment
from deployments.serializers import DeploymentSerializer
from services.lookup import find_service


class Command(DaoflowCommand):
    help = "Deploy a service: queue a deployment of its current configuration."
    mutating = True

    def add_command_arguments(self, parser):
        parser.add_argument("--service", required=True, help="Service to deploy.")
        parser.add_argument("--project", help="Project of the service, when its name is in several projects.")
        parser.add_argument("--wait", action="store_true",
                            help="Follow the steps and log lines until the deployment ends; exit 1 if it failed.")
        parser.add_argument("--idempotency-key", default="",
                            help="Requests with the same key and input return the same deployment.")

    def run(self, principal, **options):
        service = find_service(principal, options["service"], options.get("project"))
        if options["dry_run"]:
            self.dry_run_done({"service": str(service), "server": service.server.name if service.server else None})
        self.confirm(options, f"Deploy {service}")
        deployment, created = actions.deploy(principal, service, idempotency_key=options["idempotency_key"])

        if options["wait"]:
            if not self._json:
                self.stdout.write(f"Deployment {deployment.pk} of {service} queued; following it.")
            deployment = follow(deployment.pk, on_line=self._print_line, on_step=self._print_step)
        data = {"deployment": DeploymentSerializer(_reload(deployment)).data, "created": created}
        if options["wait"] and deployment.conclusion != Deployment.CONCLUSION_SUCCEEDED:
            self.succeed_then_fail(data)
        return data

    def succeed_then_fail(self, data):
        # The deployment record is the output either way; the exit code
        # tells scripts that it did not succeed.
        if self._json:
            self.emit_json({"ok": False, "error": self._failure_sentence(data["deployment"]),
                            "code": "DEPLOYMENT_FAILED", "data": data})
        else:
            self.render(data)
        raise SystemExit(EXIT_ERROR)

    @staticmethod
    def _failure_sentence(deployment: dict) -> str:
        if deployment["conclusion"] == "cancelled":
            return f"Deployment {deployment['id']} was cancelled."
        return (f"Deployment {deployment['id']} failed in step {deployment['failed_step'] or '?'}: "
                f"{deployment['failure_reason']}")

    def _print_line(self, line):
        if not self._json:
            step = line.step.name if line.step else "-"
            self.stdout.write(f"  [{step}] {line.text}")

    def _print_step(self, step):
        if not self._json and step.status != "pending":
            self.stdout.write(f"step {step.name}: {step.status}")

    def render(self, data):
        deployment = data["deployment"]
        outcome = deployment["conclusion"] or deployment["status"]
        self.stdout.write(f"Deployment {deployment['id']} of {deployment['project']}/{deployment['service']} "
                          f"to {deployment['server']}: {outcome}")
        if deployment["failure_reason"]:
            self.stdout.write(f"  failed in {deployment['failed_step']}: {deployment['failure_reason']}")


def _reload(deployment):
    return Deployment.objects.select_related("service__project", "server").prefetch_related("steps").get(
        pk=deployment.pk
    )
