import sys

from django.contrib.auth import get_user_model
from guardian.conf import settings as guardian_settings

from accounts import actions, scopes
from accounts.lookup import find_user
from accounts.permissions import require_scope
from accounts.principal import role_of
from daoflow.command import DaoflowCommand
from daoflow.errors import InvalidInput


def user_dict(user) -> dict:
    return {
        "id": user.pk,
        "username": user.username,
        "role": role_of(user),
        "active": user.is_active,
        "has_password": user.has_usable_password(),
        "date_joined": user.date_joined,
        "last_login": user.last_login,
    }


class Command(DaoflowCommand):
    help = "Create users, change their roles and list them."
    has_subcommands = True

    def add_command_arguments(self, parser):
        subparsers = parser.add_subparsers(dest="action", required=True, metavar="{create,set-role,list}")
        create = self.add_subcommand(subparsers, "create", "Create a user with a role.", mutating=True)
        create.add_argument("--username", required=True, help="Login name.")
        create.add_argument("--role", required=True, choices=list(scopes.ROLE_SCOPES),
                            help="Role, which sets the scopes the user can hold.")
        create.add_argument("--email", default="", help="E-mail address (optional).")
        create.add_argument("--password-stdin", action="store_true",
                            help="Read the password from the first line of standard input; "
                                 "without it the user can only act through API tokens.")
        set_role = self.add_subcommand(subparsers, "set-role", "Change a user's role.", mutating=True)
        set_role.add_argument("--username", required=True, help="Login name.")
        set_role.add_argument("--role", required=True, choices=list(scopes.ROLE_SCOPES), help="New role.")
        self.add_subcommand(subparsers, "list", "List users and their roles.", mutating=False)

    def run(self, principal, **options):
        action = options["action"]
        if action == "list":
            require_scope(principal, scopes.MEMBERS_MANAGE)
            # guardian keeps a row for anonymous visitors; it is no member.
            users = (
                get_user_model().objects.select_related("membership")
                .exclude(username=guardian_settings.ANONYMOUS_USER_NAME)
                .order_by("username")
            )
            return {"users": [user_dict(user) for user in users]}
        if action == "create":
            return self._create(principal, options)
        return self._set_role(principal, options)

    def _create(self, principal, options):
        password = None
        if options["password_stdin"]:
            password = sys.stdin.readline().rstrip("\r\n")
            if not password:
                raise InvalidInput("--password-stdin: standard input held no password; pipe one line with it.",
                                   field="password")
        if options["dry_run"]:
            self.dry_run_done({"user": {"username": options["username"], "role": options["role"]}})
        self.confirm(options, f"Create user {options['username']!r} with role {options['role']}")
        user = actions.create_user(principal, username=options["username"], role=options["role"],
                                   password=password, email=options["email"])
        return {"user": user_dict(user)}

    def _set_role(self, principal, options):
        user = find_user(options["username"])
        if options["dry_run"]:
            self.dry_run_done({"user": user.username, "changes": {"role": {"before": role_of(user),
                                                                           "after": options["role"]}}})
        self.confirm(options, f"Give {user.username!r} the role {options['role']}")
        changes = actions.set_role(principal, user, options["role"])
        user.refresh_from_db()
        return {"user": user_dict(find_user(user.username)), "changes": changes}

    def render(self, data):
        if data.get("dry_run"):
            self.stdout.write("Dry run: nothing was written.")
        for user in data.get("users") or ([data["user"]] if isinstance(data.get("user"), dict) else []):
            state = "" if user["active"] else "  (inactive)"
            login = "password" if user["has_password"] else "tokens only"
            self.stdout.write(f"{user['username']:<24} {user['role']:<10} {login}{state}")
        for field, change in (data.get("changes") or {}).items():
            self.stdout.write(f"  {field}: {change['before']} -> {change['after']}")
