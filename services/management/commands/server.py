from accounts import scopes
from daoflow.command import DaoflowCommand, read_file_argument
from daoflow.errors import ScopeDenied
from services import actions
from services.hostkeys import fingerprint
from services.lookup import find_server
from services.models import Server
from services.serializers import ServerSerializer


class Command(DaoflowCommand):
    help = "Register SSH target servers and approve their host keys."
    has_subcommands = True

    def add_command_arguments(self, parser):
        subparsers = parser.add_subparsers(dest="action", required=True, metavar="{add,approve-host-key,list}")
        add = self.add_subcommand(subparsers, "add", "Register an SSH server and scan its host key.", mutating=True)
        add.add_argument("--name", required=True, help="Server name (a DNS label).")
        add.add_argument("--host", required=True, help="Host name or IP address of the server.")
        add.add_argument("--port", type=int, default=22, help="SSH port (default 22).")
        add.add_argument("--user", default="root", help="SSH user (default root); it must be able to run docker.")
        add.add_argument("--ssh-key", required=True, help="File with the private key the product logs in with.")

        approve = self.add_subcommand(
            subparsers, "approve-host-key", "Trust the host key scanned when the server was added.", mutating=True
        )
        approve.add_argument("--name", required=True, help="Server name.")
        approve.add_argument("--fingerprint", required=True,
                             help="The SHA256:... fingerprint you checked on the server itself.")
        self.add_subcommand(subparsers, "list", "List servers.", mutating=False)

    def run(self, principal, **options):
        action = options["action"]
        if action == "list":
            if not principal.has_scope(scopes.SERVER_READ):
                raise ScopeDenied(scopes.SERVER_READ, principal.scopes)
            actions.ensure_local_server()
            return {"servers": ServerSerializer(Server.objects.all(), many=True).data}
        if action == "add":
            return self._add(principal, options)
        return self._approve(principal, options)

    def _add(self, principal, options):
        private_key = read_file_argument(options["ssh_key"], "--ssh-key")
        if options["dry_run"]:
            self.dry_run_done({"server": {"name": options["name"], "host": options["host"], "port": options["port"]}})
        self.confirm(options, f"Register server {options['name']!r} at {options['host']}:{options['port']}")
        server = actions.add_server(
            principal, name=options["name"], host=options["host"], port=options["port"],
            user=options["user"], private_key=private_key,
        )
        key_type = server.scanned_host_key.split()[0]
        return {
            "server": ServerSerializer(server).data,
            "host_key": {"algorithm": key_type, "fingerprint": fingerprint(server.scanned_host_key)},
            "next": f"daoflow server approve-host-key --name {server.name} "
                    f"--fingerprint {fingerprint(server.scanned_host_key)} --yes",
        }

    def _approve(self, principal, options):
        server = find_server(principal, options["name"])
        if options["dry_run"]:
            self.dry_run_done({"server": server.name, "fingerprint": options["fingerprint"]})
        self.confirm(options, f"Trust host key {options['fingerprint']} for server {server.name!r}")
        server = actions.approve_host_key(principal, server, options["fingerprint"])
        return {"server": ServerSerializer(server).data}

    def render(self, data):
        if "servers" in data:
            for server in data["servers"]:
                approved = "approved" if server["host_key_approved"] else "NOT approved"
                self.stdout.write(f"{server['name']}  {server['kind']}  {server['host'] or '-'}:{server['port']}  "
                                  f"host key {approved} {server['host_key_fingerprint'] or ''}")
            return
        server = data["server"]
        self.stdout.write(f"Server {server['name']} ({server['host']}:{server['port']})")
        if "host_key" in data:
            self.stdout.write(f"Host key: {data['host_key']['algorithm']} {data['host_key']['fingerprint']}")
            self.stdout.write("Check this fingerprint on the server itself, then approve it:")
            self.stdout.write(f"  {data['next']}")
        else:
            self.stdout.write(f"Host key approved: {server['host_key_fingerprint']}")
