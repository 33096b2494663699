import argparse

from daoflow.command import DaoflowCommand
from daoflow.errors import InvalidInput
from services import actions, validation
from services.config import ServiceInput, read_input_file
from services.lookup import find_environment, find_project, find_service
from services.models import Service
from services.serializers import ServiceSerializer

FLAG_LABELS = {
    "name": "--name",
    "source_type": "--source-type",
    "image": "--image",
    "repository_url": "--repository-url",
    "branch": "--branch",
    "compose_path": "--compose-path",
    "compose_document": "--compose-file",
    "compose_service": "--compose-service",
    "dockerfile_path": "--dockerfile-path",
    "target_server": "--target-server",
    "port": "--port",
    "remove_port": "--remove-port",
    "volume": "--volume",
    "remove_volume": "--remove-volume",
    "env": "--env",
    "unset_env": "--unset-env",
}


def _check_lookup_name(flag: str, value: str) -> None:
    """Reject a name that no project, environment or service can have before it reaches a query."""
    try:
        validation.validate_name(flag, value)
    except validation.InvalidValue as error:
        raise InvalidInput.from_invalid_value(error) from None


class Command(DaoflowCommand):
    help = "Create a service or change its configuration."
    has_subcommands = True

    def add_command_arguments(self, parser):
        subparsers = parser.add_subparsers(dest="action", required=True, metavar="{create,update}")
        create = self.add_subcommand(subparsers, "create", "Create a service in a project.", mutating=True)
        create.add_argument("--project", required=True, help="Project the service belongs to.")
        create.add_argument("--environment", help="Environment (default: the project's only one).")
        create.add_argument("--name", required=True, help="Service name (a DNS label, unique in the project).")
        create.add_argument("--source-type", required=True, choices=["image", "dockerfile", "compose"],
                            help="Where the service comes from.")
        self._config_arguments(create)

        update = self.add_subcommand(subparsers, "update", "Change a service's configuration.", mutating=True)
        update.add_argument("--name", required=True, help="The service to change.")
        update.add_argument("--project", help="Project of the service, when its name is in several projects.")
        update.add_argument("--rename", help="New service name.")
        update.add_argument("--source-type", choices=["image", "dockerfile", "compose"], help="New source type.")
        self._config_arguments(update)
        update.add_argument("--remove-port", action="append", default=[], metavar="SPEC",
                            help="Remove a port mapping (as listed by `daoflow services --name`).")
        update.add_argument("--remove-volume", action="append", default=[], metavar="SPEC",
                            help="Remove a volume mount.")
        update.add_argument("--unset-env", action="append", default=[], metavar="KEY",
                            help="Remove a service variable.")

    @staticmethod
    def _config_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--image", help="Image reference, e.g. nginx:1.27 or registry:5000/team/api:1.4.")
        parser.add_argument("--repository-url", help="Git repository (https://, ssh://, git@host:path, file:///path).")
        parser.add_argument("--branch", help="Git branch to deploy (default: the repository's default branch).")
        parser.add_argument("--compose-path", help="Path of the compose file inside the repository (default: compose.yaml).")
        parser.add_argument("--compose-file", metavar="FILE",
                            help="An inline compose document read from FILE ('-' for standard input, '' to clear).")
        parser.add_argument("--compose-service", help="Compose service that gets the ports and volumes.")
        parser.add_argument("--dockerfile-path", help="Path of the Dockerfile inside the repository.")
        parser.add_argument("--port", action="append", default=[], metavar="SPEC",
                            help="Port mapping in Compose short syntax, e.g. 127.0.0.1:8080:80/tcp, or long "
                                 "syntax as a mapping, e.g. '{target: 80, published: 8080}' (repeatable).")
        parser.add_argument("--volume", action="append", default=[], metavar="SPEC",
                            help="Volume mount, e.g. data:/var/lib/data or /srv/conf:/etc/app:ro, or long syntax "
                                 "as a mapping, e.g. '{type: bind, source: /srv, target: /srv, "
                                 "bind: {propagation: rshared}}' (repeatable).")
        parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                            help="Environment variable (repeatable).")
        parser.add_argument("--secret-env", action="append", default=[], metavar="KEY=VALUE",
                            help="Secret environment variable, masked in output (repeatable).")
        parser.add_argument("--target-server", help="Server to deploy to (default: the environment's server).")

    def _input(self, options) -> ServiceInput:
        compose_document = None
        if options.get("compose_file"):
            compose_document = read_input_file(options["compose_file"], "--compose-file")
        elif options.get("compose_file") == "":
            compose_document = ""  # --compose-file "" clears the inline document.
        set_env = []
        for flag, secret in (("env", False), ("secret_env", True)):
            for text in options.get(flag) or []:
                try:
                    key, value = validation.parse_env_assignment(f"--{flag.replace('_', '-')}", text)
                except validation.InvalidValue as error:
                    raise InvalidInput.from_invalid_value(error) from None
                set_env.append((key, value, secret))
        return ServiceInput(
            name=options.get("rename") if options["action"] == "update" else options["name"],
            source_type=options.get("source_type"),
            image=options.get("image"),
            repository_url=options.get("repository_url"),
            branch=options.get("branch"),
            compose_path=options.get("compose_path"),
            compose_document=compose_document,
            compose_service=options.get("compose_service"),
            dockerfile_path=options.get("dockerfile_path"),
            target_server=options.get("target_server"),
            add_ports=options.get("port") or [],
            remove_ports=options.get("remove_port") or [],
            add_volumes=options.get("volume") or [],
            remove_volumes=options.get("remove_volume") or [],
            set_env=set_env,
            unset_env=options.get("unset_env") or [],
            labels={**FLAG_LABELS, "name": "--rename" if options["action"] == "update" else "--name"},
        )

    def run(self, principal, **options):
        for flag in ("name", "project", "environment"):
            if options.get(flag):
                _check_lookup_name(f"--{flag}", options[flag])
        data = self._input(options)
        if options["action"] == "create":
            return self._create(principal, data, options)
        return self._update(principal, data, options)

    def _create(self, principal, data, options):
        project = find_project(principal, options["project"])
        environment = find_environment(project, options.get("environment"))
        # Every check runs before the confirmation, so an invalid value is reported as
        # INVALID_INPUT even without --yes.
        changes = actions.preview_service_creation(principal, project, environment, data)
        if options["dry_run"]:
            self.dry_run_done({"service": {"name": data.name, "project": project.name,
                                           "environment": environment.name, "source_type": data.source_type},
                               "changes": changes})
        self.confirm(options, f"Create service {data.name!r} in {project.name}/{environment.name}")
        service = actions.create_service(principal, project, environment, data)
        return {"service": self._serialize(principal, service), "changes": changes}

    def _update(self, principal, data, options):
        service = find_service(principal, options["name"], options.get("project"))
        changes = actions.update_service(principal, service, data, dry_run=True)
        if options["dry_run"]:
            self.dry_run_done({"changes": changes})
        self.confirm(options, f"Update service {service}")
        changes = actions.update_service(principal, service, data)
        return {"service": self._serialize(principal, service), "changes": changes}

    @staticmethod
    def _serialize(principal, service: Service) -> dict:
        fresh = Service.objects.with_read_model().get(pk=service.pk)
        return ServiceSerializer(fresh, context={"principal": principal}).data

    def render(self, data):
        if data.get("dry_run"):
            self.stdout.write("Dry run: nothing was written.")
        service = data.get("service") or {}
        if "state_label" in service:
            self.stdout.write(f"Service {service['project']}/{service['name']} ({service['source_type']}): "
                              f"{service['state_label']}")
        for field, change in (data.get("changes") or {}).items():
            if field == "env":
                # One entry per key: {"KEY": {"before", "after"}}.
                for key, value in change.items():
                    self.stdout.write(f"  env {key}: {_short(value['before'])} -> {_short(value['after'])}")
            else:
                self.stdout.write(f"  {field}: {_short(change['before'])} -> {_short(change['after'])}")


def _short(value, limit: int = 200) -> str:
    """Format a value for a terminal line: its repr, cut to `limit` characters, so a certificate stays one line."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} characters)"

