import sys

from daoflow.command import DaoflowCommand
from daoflow.errors import InvalidInput
from services import env, validation
from services.config import read_input_file
from services.lookup import find_environment, find_project, find_service


class Command(DaoflowCommand):
    help = "List, set and unset environment variables at project, environment or service level."
    has_subcommands = True

    def add_command_arguments(self, parser):
        subparsers = parser.add_subparsers(dest="action", required=True, metavar="{list,set,unset}")
        listing = self.add_subcommand(subparsers, "list", "List variables; with --service, the layered view.",
                                      mutating=False)
        self._level_arguments(listing)
        listing.add_argument("--own", action="store_true",
                             help="With --service: only the variables set on the service itself, not the "
                                  "layered view.")

        setting = self.add_subcommand(
            subparsers, "set",
            "Set a variable. The value comes from --value, --value-file or standard input, byte for byte.",
            mutating=True,
        )
        self._level_arguments(setting)
        setting.add_argument("--key", required=True, help="Variable name: 1 to 255 characters without '=' or NUL.")
        source = setting.add_mutually_exclusive_group()
        source.add_argument("--value", help="The value, exactly as given (write --value=-x for a value "
                                            "that starts with '-').")
        source.add_argument("--value-file", metavar="FILE",
                            help="Read the value from FILE, byte for byte as UTF-8, final newline included "
                                 "(for keys and certificates).")
        setting.add_argument("--secret", action="store_true",
                             help="Mark the value secret: it is masked in output, logs and the audit trail.")

        unsetting = self.add_subcommand(subparsers, "unset", "Remove a variable from one level.", mutating=True)
        self._level_arguments(unsetting)
        unsetting.add_argument("--key", required=True, help="Variable name.")

    @staticmethod
    def _level_arguments(parser) -> None:
        parser.add_argument("--project", help="Project; required unless --service names a service "
                                              "whose name is unique.")
        parser.add_argument("--environment", help="Environment, for an environment-level variable.")
        parser.add_argument("--service", help="Service, for a service-level variable.")

    def run(self, principal, **options):
        project, environment, service = self._level(principal, options)
        where = {"project": project, "environment": environment, "service": service}
        if options["action"] == "list":
            resolved = service is not None and not options.get("own")
            variables = env.list_variables(principal, **where, resolved=resolved)
            return {"level": _level_name(where), "resolved": resolved, "variables": variables}

        key = self._key(options)
        if options["action"] == "set":
            value = self._value(options)
            change = env.preview_change(principal, **where, key=key, value=value, secret=options["secret"])
            if options["dry_run"]:
                self.dry_run_done({"changes": change})
            self.confirm(options, f"Set {key!r} on {_level_name(where)}")
            row = env.set_variable(principal, **where, key=key, value=value, secret=options["secret"])
            listed = next(item for item in env.list_variables(principal, **where) if item["key"] == row.key
                          and item["level"] == row.level)
            return {"variable": listed, "changes": change}

        change = env.preview_change(principal, **where, key=key)
        if options["dry_run"]:
            self.dry_run_done({"changes": change})
        self.confirm(options, f"Unset {key!r} on {_level_name(where)}")
        env.unset_variable(principal, **where, key=key)
        return {"changes": change}

    def _level(self, principal, options):
        for flag in ("project", "environment", "service"):
            if options.get(flag) is not None:
                _check_name(f"--{flag}", options[flag])
        if options.get("service"):
            service = find_service(principal, options["service"], options.get("project"))
            if options.get("environment") and options["environment"] != service.environment.name:
                raise InvalidInput(
                    f"--environment: service {service.name!r} is in environment {service.environment.name!r}, "
                    f"not {options['environment']!r}. Leave --environment out with --service.",
                    field="--environment",
                )
            return service.project, None, service
        if not options.get("project"):
            raise InvalidInput("--project: missing. Name the project (and --environment or --service) "
                               "whose variables to use.", field="--project")
        project = find_project(principal, options["project"])
        environment = find_environment(project, options["environment"]) if options.get("environment") else None
        return project, environment, None

    @staticmethod
    def _key(options) -> str:
        try:
            return validation.validate_env_key(options["key"])
        except validation.InvalidValue as error:
            message = error.message.removeprefix("key: ")
            raise InvalidInput(f"--key: {message}", field="--key") from None

    @staticmethod
    def _value(options) -> str:
        if options.get("value") is not None:
            value, flag = options["value"], "--value"
        elif options.get("value_file") is not None:
            value, flag = read_input_file(options["value_file"], "--value-file"), "--value-file"
        elif sys.stdin is None or sys.stdin.isatty():
            raise InvalidInput(
                "The value is missing: give --value VALUE, --value-file FILE, or pipe it on standard input.",
                field="--value",
            )
        else:
            value, flag = read_input_file("-", "standard input"), "standard input"
        try:
            return validation.validate_env_value(value)
        except validation.InvalidValue as error:
            message = error.message.removeprefix("value: ")
            raise InvalidInput(f"{flag}: {message}", field=flag) from None

    def render(self, data):
        if data.get("dry_run"):
            self.stdout.write("Dry run: nothing was written.")
        if "variables" in data:
            heading = "layered view of " if data["resolved"] else ""
            self.stdout.write(f"Variables of {heading}{data['level']}:")
            if not data["variables"]:
                self.stdout.write("  none. Set one with `daoflow env set`.")
            for item in data["variables"]:
                owner = item["service"] or item["environment"] or item["project"]
                flag = " (secret)" if item["secret"] else ""
                self.stdout.write(f"  {item['key']}={item['value']!r}  [{item['level']} {owner}]{flag}")
            return
        for key, change in (data.get("changes") or {}).items():
            self.stdout.write(f"  {key}: {change['before']!r} -> {change['after']!r}")


def _check_name(flag: str, value: str) -> None:
    try:
        validation.validate_name(flag, value)
    except validation.InvalidValue as error:
        raise InvalidInput(error.message, field=flag) from None


def _level_name(where: dict) -> str:
    if where["service"] is not None:
        return f"service {where['service'].project.name}/{where['service'].name}"
    if where["environment"] is not None:
        return f"environment {where['project'].name}/{where['environment'].name}"
    return f"project {where['project'].name}"
