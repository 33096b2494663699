from accounts import scopes
from daoflow.command import DaoflowCommand
from services import actions
from services.lookup import find_server
from services.models import Project
from services.serializers import ProjectSerializer


class Command(DaoflowCommand):
    help = "Create and list projects."
    has_subcommands = True

    def add_command_arguments(self, parser):
        subparsers = parser.add_subparsers(dest="action", required=True, metavar="{create,list}")
        create = self.add_subcommand(subparsers, "create", "Create a project with its first environment.", mutating=True)
        create.add_argument("--name", required=True, help="Project name (a DNS label).")
        create.add_argument("--environment", default=actions.DEFAULT_ENVIRONMENT,
                            help="Name of the first environment (default: production).")
        create.add_argument("--server", help="Default target server of that environment (default: local).")
        self.add_subcommand(subparsers, "list", "List the projects you can read.", mutating=False)

    def run(self, principal, **options):
        if options["action"] == "list":
            projects = Project.objects.for_scope(principal, scopes.SERVICE_READ).prefetch_related("environments")
            return {"projects": ProjectSerializer(projects, many=True).data}

        server = find_server(principal, options["server"]) if options.get("server") else None
        if options["dry_run"]:
            self.dry_run_done({"project": {"name": options["name"], "environment": options["environment"]}})
        self.confirm(options, f"Create project {options['name']!r}")
        project = actions.create_project(principal, options["name"], options["environment"], server)
        return {"project": ProjectSerializer(project).data}

    def render(self, data):
        if data.get("dry_run"):
            project = data["project"]
            self.stdout.write(f"Dry run: project {project['name']!r} with environment {project['environment']!r} "
                              "would be created; nothing was written.")
            return
        for project in data.get("projects") or [data["project"]]:
            self.stdout.write(f"{project['name']}  environments: {', '.join(project['environments'])}")
