from daoflow.command import DaoflowCommand
from deployments import probes
from deployments.models import HealthProbe
from services.lookup import find_service


class Command(DaoflowCommand):
    help = "Set, list or remove the HTTP and TCP health probes a deployment's health step runs."
    has_subcommands = True

    def add_command_arguments(self, parser):
        subparsers = parser.add_subparsers(dest="action", required=True, metavar="{set,list,remove}")

        set_parser = self.add_subcommand(
            subparsers, "set", "Create or replace the probe on a port of a service.", mutating=True)
        self._service_arguments(set_parser)
        set_parser.add_argument("--port", type=int, required=True,
                                help="Published port on the target host that the probe connects to.")
        set_parser.add_argument("--kind", choices=["http", "tcp"], default="http",
                                help="http: GET the path and compare the status; tcp: open a connection.")
        set_parser.add_argument("--path", default="/", help="Request path of an HTTP probe (default /).")
        set_parser.add_argument("--expected-status", type=int, default=200,
                                help="HTTP status that counts as healthy (default 200).")
        set_parser.add_argument("--timeout", type=int, default=60,
                                help="Seconds to keep probing before the deployment fails (default 60).")
        set_parser.add_argument("--interval", type=float, default=1.0,
                                help="Seconds between two attempts (default 1).")

        list_parser = self.add_subcommand(subparsers, "list", "List the probes of a service.", mutating=False)
        self._service_arguments(list_parser)

        remove = self.add_subcommand(subparsers, "remove", "Remove the probe on a port.", mutating=True)
        self._service_arguments(remove)
        remove.add_argument("--port", type=int, required=True, help="Port of the probe to remove.")

    @staticmethod
    def _service_arguments(parser) -> None:
        parser.add_argument("--service", required=True, help="Service name.")
        parser.add_argument("--project", help="Project of the service, when its name is in several projects.")

    def run(self, principal, **options):
        service = find_service(principal, options["service"], options.get("project"))
        action = options["action"]
        if action == "list":
            return {"service": str(service),
                    "probes": [probes.probe_dict(p) for p in HealthProbe.objects.filter(service=service)]}

        if action == "set":
            data = probes.validate_probe(probes.ProbeInput(
                kind=options["kind"], port=options["port"], path=options["path"],
                expected_status=options["expected_status"], timeout_seconds=options["timeout"],
                interval_seconds=options["interval"],
            ))
            if options["dry_run"]:
                self.dry_run_done({"service": str(service), "probe": vars(data)})
            self.confirm(options, f"Set the probe on port {data.port} of {service}")
            probe, created = probes.set_probe(principal, service, data)
            return {"service": str(service), "probe": probes.probe_dict(probe), "created": created}

        if options["dry_run"]:
            self.dry_run_done({"service": str(service), "removed_port": options["port"]})
        self.confirm(options, f"Remove the probe on port {options['port']} of {service}")
        probes.remove_probe(principal, service, options["port"])
        return {"service": str(service), "removed_port": options["port"]}

    def render(self, data):
        if data.get("dry_run"):
            if "removed_port" in data:
                self.stdout.write(f"Dry run: the probe on port {data['removed_port']} of {data['service']} "
                                  "would be removed; nothing was written.")
            else:
                self.stdout.write(f"Dry run: {data['service']} would get the probe {_label(data['probe'])}; "
                                  "nothing was written.")
            return
        if "probes" in data:
            if not data["probes"]:
                self.stdout.write(f"{data['service']}: no probes")
            for probe in data["probes"]:
                self.stdout.write(f"{data['service']}: {_label(probe)}")
        elif "probe" in data and "created" in data:
            verb = "created" if data["created"] else "updated"
            self.stdout.write(f"{data['service']}: probe {verb}: {_label(data['probe'])}")
        elif "removed_port" in data:
            self.stdout.write(f"{data['service']}: probe on port {data['removed_port']} removed")
        else:
            super().render(data)


def _label(probe: dict) -> str:
    target = f"port {probe['port']}"
    if probe["kind"] == "http":
        target += f" path {probe['path']} expects {probe['expected_status']}"
    return f"{probe['kind']} {target}, timeout {probe['timeout_seconds']} s, every {probe['interval_seconds']} s"
