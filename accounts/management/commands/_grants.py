"""The options and the run shared by `daoflow grant` and `daoflow revoke`."""

from accounts.lookup import find_grant_target, find_user
from accounts.scopes import OBJECT_SCOPES
from daoflow.command import DaoflowCommand


class GrantCommand(DaoflowCommand):
    mutating = True
    verb = ""

    def add_command_arguments(self, parser):
        parser.add_argument("--user", required=True, help="User whose grants change.")
        parser.add_argument("--project", help="Project: the grant covers the project and all its services.")
        parser.add_argument("--service", help="Service: the grant covers only this service.")
        parser.add_argument("--scope", required=True, nargs="+", action="extend", metavar="SCOPE",
                            help=f"One or more of: {', '.join(OBJECT_SCOPES)}.")

    def change(self, principal, user, target, requested) -> dict:
        raise NotImplementedError

    def run(self, principal, **options):
        user = find_user(options["user"])
        target = find_grant_target(options.get("project"), options.get("service"))
        requested = options["scope"]
        if options["dry_run"]:
            self.dry_run_done({"user": user.username, "target": str(target), "scopes": sorted(set(requested))})
        self.confirm(options, f"{self.verb.capitalize()} {', '.join(requested)} for {user.username} on {target}")
        return self.change(principal, user, target, requested)

    def render(self, data):
        if data.get("dry_run"):
            self.stdout.write(f"Dry run: would {self.verb} {', '.join(data['scopes'])} for {data['user']} "
                              f"on {data['target']}; nothing was written.")
            return
        changed = data.get("added", data.get("removed", []))
        self.stdout.write(f"{data['user']} on {data['target']}: {self.verb} {', '.join(changed) or 'nothing new'}")
        self.stdout.write(f"  granted now: {', '.join(data['granted']) or 'none'}")
        self.stdout.write(f"  effective with role {data['role']}: {', '.join(data['effective']) or 'none'}")
        if data.get("note"):
            self.stdout.write(f"  note: {data['note']}")
