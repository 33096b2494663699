from datetime import timedelta

from django.utils import timezone

from accounts import actions, scopes
from accounts.audit_query import parse_point_in_time
from accounts.lookup import find_token, find_user
from accounts.models import APIToken
from daoflow.command import DaoflowCommand
from daoflow.errors import InvalidInput

MAX_EXPIRY_DAYS = 3650


def token_dict(token: APIToken) -> dict:
    return {
        "id": token.pk,
        "user": token.user.username,
        "name": token.name,
        "prefix": token.prefix,
        "scopes": token.scopes,
        "created_at": token.created_at,
        "expires_at": token.expires_at,
        "last_used_at": token.last_used_at,
        "revoked_at": token.revoked_at,
        "active": token.is_active,
    }


def parse_expiry(expires_in: int | None, expires_at: str | None):
    if expires_in is not None and expires_at:
        raise InvalidInput("Give --expires-in or --expires-at, not both.", field="expires_at")
    if expires_in is not None:
        if not 1 <= expires_in <= MAX_EXPIRY_DAYS:
            raise InvalidInput(f"--expires-in: {expires_in} is not a number of days from 1 to {MAX_EXPIRY_DAYS}.",
                               field="expires_in")
        return timezone.now() + timedelta(days=expires_in)
    if expires_at:
        moment = parse_point_in_time(expires_at, "--expires-at", "2027-01-31 or 2027-01-31T12:00:00Z")
        if moment <= timezone.now():
            raise InvalidInput(f"--expires-at: {expires_at!r} is in the past; give a future time.",
                               field="expires_at")
        return moment
    return None


class Command(DaoflowCommand):
    help = "Create, list and revoke API tokens."
    has_subcommands = True

    def add_command_arguments(self, parser):
        subparsers = parser.add_subparsers(dest="action", required=True, metavar="{create,list,revoke}")
        create = self.add_subcommand(subparsers, "create",
                                     "Create an API token; its value is printed once.", mutating=True)
        create.add_argument("--user", required=True, help="User the token acts as.")
        create.add_argument("--name", required=True, help="Name of the token, unique per user.")
        create.add_argument("--scope", required=True, nargs="+", action="extend", metavar="SCOPE",
                            help=f"Scopes the token carries, within the user's role: {', '.join(scopes.ALL_SCOPES)}.")
        create.add_argument("--expires-in", type=int, metavar="DAYS", help="Expire after this many days.")
        create.add_argument("--expires-at", metavar="WHEN", help="Expire at this date or ISO 8601 time (UTC if no zone).")

        listing = self.add_subcommand(subparsers, "list", "List API tokens (never their values).", mutating=False)
        listing.add_argument("--user", help="Only this user's tokens.")
        listing.add_argument("--all", action="store_true", help="Include revoked and expired tokens.")

        revoke = self.add_subcommand(subparsers, "revoke", "Revoke an API token at once.", mutating=True)
        revoke.add_argument("--user", required=True, help="User the token belongs to.")
        revoke.add_argument("--name", required=True, help="Name of the token.")

    def run(self, principal, **options):
        action = options["action"]
        if action == "list":
            return self._list(principal, options)
        user = find_user(options["user"])
        if action == "create":
            return self._create(principal, user, options)
        token = find_token(user, options["name"])
        if options["dry_run"]:
            self.dry_run_done({"token": token_dict(token)})
        self.confirm(options, f"Revoke token {token.name!r} of {user.username}")
        return {"token": token_dict(actions.revoke_token(principal, token))}

    def _create(self, principal, user, options):
        expires_at = parse_expiry(options.get("expires_in"), options.get("expires_at"))
        if options["dry_run"]:
            self.dry_run_done({"token": {"user": user.username, "name": options["name"],
                                         "scopes": sorted(set(options["scope"])), "expires_at": expires_at}})
        self.confirm(options, f"Create token {options['name']!r} for {user.username}")
        token, raw = actions.create_token(principal, user, name=options["name"], requested=options["scope"],
                                          expires_at=expires_at)
        return {"token": token_dict(token), "value": raw}

    def _list(self, principal, options):
        tokens = APIToken.objects.select_related("user").order_by("user__username", "name")
        if not principal.has_scope(scopes.TOKENS_MANAGE):
            # Without tokens:manage a principal lists only its own user's tokens.
            tokens = tokens.filter(user=principal.user) if principal.user is not None else tokens.none()
        if options.get("user"):
            tokens = tokens.filter(user=find_user(options["user"]))
        if not options.get("all"):
            tokens = tokens.active()
        return {"tokens": [token_dict(token) for token in tokens]}

    def render(self, data):
        if data.get("dry_run"):
            self.stdout.write("Dry run: nothing was written.")
        if "value" in data:
            self.stdout.write(f"Token {data['token']['name']} for {data['token']['user']}: {data['value']}")
            self.stdout.write("Store it now: it is shown only this once.")
            return
        for token in data.get("tokens") or [data["token"]]:
            if token.get("active"):
                state = "active"
            elif token.get("revoked_at"):
                state = "revoked"
            else:
                state = "expired"
            self.stdout.write(
                f"{token['user']:<16} {token['name']:<20} {token['prefix']}…  {state:<8} "
                f"expires {token['expires_at'] or 'never'}  last used {token['last_used_at'] or 'never'}  "
                f"{' '.join(token['scopes'])}"
            )

