from accounts import scopes
from daoflow.command import DaoflowCommand
from deployments import actions
from deployments.lookup import find_deployment
from deployments.models import Deployment
from deployments.serializers import DeploymentSerializer

from ._deployment_output import DeploymentOutputMixin, reload


class Command(DeploymentOutputMixin, DaoflowCommand):
    help = ("Cancel a deployment: a queued one ends at once, a running one is stopped by its worker "
            "within a few seconds.")
    mutating = True

    def add_command_arguments(self, parser):
        parser.add_argument("--deployment", required=True, help="Id of the deployment to cancel.")

    def run(self, principal, **options):
        deployment = find_deployment(principal, options["deployment"], scope=scopes.DEPLOY_CANCEL)
        if options["dry_run"]:
            self.dry_run_done({"deployment": deployment.pk, "effect": actions.cancel_effect(deployment)})
        self.confirm(options, f"Cancel deployment {deployment.pk} of {deployment.service}")
        cancelled = actions.cancel(principal, deployment)
        return {"deployment": DeploymentSerializer(reload(cancelled)).data}

    def render(self, data):
        if data.get("dry_run"):
            self.stdout.write(f"Dry run: deployment {data['deployment']} would be {data['effect']}.")
            return
        deployment = data["deployment"]
        if deployment["status"] == Deployment.STATUS_RUNNING:
            self.stdout.write(
                f"Cancellation of deployment {deployment['id']} requested; its worker stops the running "
                f"command and concludes it cancelled. Follow it with `daoflow logs --deployment "
                f"{deployment['id']} --follow`."
            )
            return
        self.render_deployment(deployment)

