from accounts import scopes
from accounts.permissions import require_scope
from daoflow.command import DaoflowCommand
from daoflow.errors import InvalidInput
from deployments.models import Deployment
from deployments.serializers import DeploymentSerializer
from services.lookup import find_service


MAX_LIMIT = 1000


class Command(DaoflowCommand):
    help = "List a service's deployments, newest first."

    def add_command_arguments(self, parser):
        parser.add_argument("--service", required=True, help="Service whose deployments to list.")
        parser.add_argument("--project", help="Project of the service, when its name is in several projects.")
        parser.add_argument("--limit", type=int, default=50,
                            help=f"How many deployments to show, 1 to {MAX_LIMIT} (default 50).")

    def run(self, principal, **options):
        if not 1 <= options["limit"] <= MAX_LIMIT:
            raise InvalidInput(f"--limit: {options['limit']} is not between 1 and {MAX_LIMIT}.", field="limit")
        service = find_service(principal, options["service"], options.get("project"))
        require_scope(principal, scopes.DEPLOY_READ, service)
        deployments = (
            Deployment.objects.filter(service=service)
            .select_related("service__project", "server")
            .prefetch_related("steps")[: options["limit"]]
        )
        return {"deployments": DeploymentSerializer(deployments, many=True).data}

    def render(self, data):
        if not data["deployments"]:
            self.stdout.write("No deployments yet. Deploy with `daoflow deploy --service NAME --yes`.")
            return
        self.stdout.write(f"{'ID':>6}  {'CREATED':<32}  {'OUTCOME':<10} FAILED STEP AND REASON")
        for deployment in data["deployments"]:
            outcome = deployment["conclusion"] or deployment["status"]
            self.stdout.write(f"{deployment['id']:>6}  {deployment['created_at']}  {outcome:<10} "
                              f"{deployment['failed_step']} {deployment['failure_reason'][:80]}")
