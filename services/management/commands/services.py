from accounts import scopes
from daoflow.command import DaoflowCommand
from daoflow.errors import ScopeDenied
from services.lookup import find_service
from services.models import Service
from services.serializers import ServiceSerializer


class Command(DaoflowCommand):
    help = "List the services you can read, or show one with --name."

    def add_command_arguments(self, parser):
        parser.add_argument("--name", help="Show only this service.")
        parser.add_argument("--project", help="Project of the service, when its name is in several projects.")

    def run(self, principal, **options):
        context = {"principal": principal}
        if options.get("name"):
            service = find_service(principal, options["name"], options.get("project"))
            service = Service.objects.with_read_model().get(pk=service.pk)
            return {"service": ServiceSerializer(service, context=context).data}
        # A list without the scope would be silently empty, so report the missing scope instead.
        if not principal.has_scope(scopes.SERVICE_READ):
            raise ScopeDenied(scopes.SERVICE_READ, principal.scopes)
        services = Service.objects.for_scope(principal, scopes.SERVICE_READ).with_read_model()
        if options.get("project"):
            services = services.filter(project__name=options["project"])
        return {"services": ServiceSerializer(services, many=True, context=context).data}

    def render(self, data):
        services = data.get("services")
        if services is None:
            self._render_one(data["service"])
            return
        if not services:
            self.stdout.write("No services. Create one with `daoflow service create`.")
            return
        for service in services:
            endpoints = ", ".join(e["address"] for e in service["endpoints"]) or "-"
            self.stdout.write(
                f"{service['project']}/{service['name']:<20} {service['source_type']:<10} "
                f"{service['state_label']:<18} {endpoints}"
            )

    def _render_one(self, service):
        self.stdout.write(f"{service['project']}/{service['name']} ({service['source_type']})")
        self.stdout.write(f"  state:    {service['state_label']}")
        for field in ("image", "repository_url", "branch", "compose_path", "dockerfile_path", "target_server"):
            if service.get(field):
                self.stdout.write(f"  {field + ':':<10}{service[field]}")
        for port in service["ports"]:
            self.stdout.write(f"  port:     {port['spec']}")
        for volume in service["volumes"]:
            self.stdout.write(f"  volume:   {volume['spec']}")
        for variable in service["env"]:
            self.stdout.write(f"  env:      {variable['key']}={variable['value']}")
        latest = service["latest_deployment"]
        if latest:
            outcome = latest["conclusion"] or latest["status"]
            self.stdout.write(f"  latest deployment: {latest['id']} {outcome} {latest['failure_reason']}")
