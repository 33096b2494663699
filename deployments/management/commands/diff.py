from daoflow.command import DaoflowCommand
from daoflow.errors import InvalidInput
from deployments.diff import diff
from deployments.lookup import find_deployment

from ._deployment_output import render_changes


class Command(DaoflowCommand):
    help = ("Show what changed between the recorded inputs of two deployments (image, compose files, "
            "ports, volumes, environment); secret values are masked.")

    def add_command_arguments(self, parser):
        parser.add_argument("--a", required=True, help="Id of the earlier deployment.")
        parser.add_argument("--b", required=True, help="Id of the later deployment.")

    def run(self, principal, **options):
        a = find_deployment(principal, _deployment_id(options["a"], "--a"))
        b = find_deployment(principal, _deployment_id(options["b"], "--b"))
        return {"diff": diff(principal, a, b)}

    def render(self, data):
        result = data["diff"]
        a, b = result["a"], result["b"]
        self.stdout.write(f"Deployment {a['id']} ({a['service']}, {a['outcome']}) -> "
                          f"deployment {b['id']} ({b['service']}, {b['outcome']})")
        render_changes(self.stdout.write, result["changes"], "  changes:")


def _deployment_id(value: str, flag: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise InvalidInput(f"{flag}: {value!r} is not a deployment id (a number).", field=flag.lstrip("-")) from None
