from accounts import scopes
from accounts.audit_query import MAX_LIMIT, entry_dict, filter_entries
from accounts.models import AuditEntry
from accounts.permissions import require_scope
from daoflow.command import DaoflowCommand
from daoflow.errors import InvalidInput


class Command(DaoflowCommand):
    help = "Show the audit trail, newest first (owners and admins: it needs members:manage)."

    def add_command_arguments(self, parser):
        parser.add_argument("--action", help="Only this action (service.update), or a group of them (service).")
        parser.add_argument("--actor", help="Only entries whose actor contains this text (a user name).")
        parser.add_argument("--target", help="Only entries whose target contains this text, or of this type.")
        parser.add_argument("--since", help="Only entries since this time: 30m, 24h, 7d, or an ISO date or time.")
        parser.add_argument("--outcome", help="Only success, denied or failed entries.")
        parser.add_argument("--limit", type=int, default=100, help=f"How many entries to show (1-{MAX_LIMIT}, default 100).")

    def run(self, principal, **options):
        require_scope(principal, scopes.MEMBERS_MANAGE)
        if not 1 <= options["limit"] <= MAX_LIMIT:
            raise InvalidInput(f"--limit: {options['limit']} is not between 1 and {MAX_LIMIT}.", field="limit")
        entries = filter_entries(
            AuditEntry.objects.all(), action=options.get("action"), actor=options.get("actor"),
            target=options.get("target"), since=options.get("since"), outcome=options.get("outcome"),
        )
        return {"entries": [entry_dict(entry) for entry in entries[: options["limit"]]]}

    def render(self, data):
        if not data["entries"]:
            self.stdout.write("No audit entries match.")
        for entry in data["entries"]:
            self.stdout.write(f"{entry['time']:%Y-%m-%d %H:%M:%S}  {entry['outcome']:<7} {entry['actor']:<30} "
                              f"{entry['action']:<24} {entry['target']}")
