"""Every write to projects, servers and services: one function each.

Each takes the acting principal, checks its scope, runs in one transaction
and writes the audit entry in that transaction.
"""

import logging

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts import audit, scopes
from accounts.permissions import require_scope
from daoflow.errors import Conflict, InvalidInput

from . import hostkeys, validation
from .config import (
    MASK,
    SCALAR_FIELDS,
    ServiceInput,
    check_port_conflicts,
    check_source_complete,
    validate_input,
)
from .models import Environment, EnvironmentVariable, PortMapping, Project, Server, Service, VolumeMount

logger = logging.getLogger(__name__)

LOCAL_SERVER_NAME = "local"
DEFAULT_ENVIRONMENT = "production"


def ensure_local_server() -> Server:
    server, _ = Server.objects.get_or_create(
        name=LOCAL_SERVER_NAME, defaults={"kind": Server.KIND_LOCAL, "host": "", "user": ""}
    )
    return server


# -- projects -------------------------------------------------------------


@audit.records_denials("project.create")
def create_project(principal, name: str, environment: str = DEFAULT_ENVIRONMENT, server: Server | None = None) -> Project:
    require_scope(principal, scopes.SERVICE_UPDATE)
    if not principal.unrestricted:
        from daoflow.errors import ScopeDenied

        raise ScopeDenied(scopes.SERVICE_UPDATE, principal.scopes, "a new project (owners and admins only)")
    try:
        validation.validate_name("--name", name)
        validation.validate_name("--environment", environment)
    except validation.InvalidValue as error:
        raise InvalidInput.from_invalid_value(error) from None

    with transaction.atomic():
        if Project.objects.filter(name=name).exists():
            raise Conflict(f"A project named {name!r} already exists; choose another name.")
        project = Project.objects.create(name=name)
        Environment.objects.create(project=project, name=environment, default_server=server or ensure_local_server())
        audit.record(principal, "project.create", project, scope=scopes.SERVICE_UPDATE,
                     diff={"name": name, "environment": environment})
    return project


@audit.records_denials("environment.create")
def create_environment(principal, project: Project, name: str, server: Server | None = None) -> Environment:
    require_scope(principal, scopes.SERVICE_UPDATE, project)
    try:
        validation.validate_name("--environment", name)
    except validation.InvalidValue as error:
        raise InvalidInput.from_invalid_value(error) from None
    with transaction.atomic():
        if project.environments.filter(name=name).exists():
            raise Conflict(f"Project {project.name!r} already has an environment {name!r}.")
        environment = Environment.objects.create(
            project=project, name=name, default_server=server or ensure_local_server()
        )
        audit.record(principal, "environment.create", environment, scope=scopes.SERVICE_UPDATE, diff={"name": name})
    return environment


# -- servers --------------------------------------------------------------


@audit.records_denials("server.add")
def add_server(principal, *, name: str, host: str, port: int = 22, user: str = "root", private_key: str) -> Server:
    require_scope(principal, scopes.SERVER_WRITE)
    try:
        validation.validate_name("--name", name)
        validation.validate_ssh_host("--host", host)
        validation.validate_ssh_user("--user", user)
    except validation.InvalidValue as error:
        raise InvalidInput.from_invalid_value(error) from None
    if not 1 <= port <= 65535:
        raise InvalidInput(f"--port: {port} is not a TCP port (1-65535).", field="port")
    if "PRIVATE KEY" not in private_key:
        raise InvalidInput(
            "--ssh-key: the file is not an OpenSSH private key (no 'PRIVATE KEY' block); "
            "pass the private key, not the .pub file.",
            field="ssh_key",
        )
    if Server.objects.filter(name=name).exists():
        raise Conflict(f"A server named {name!r} already exists; choose another name.")

    # Scanned outside the transaction: it is network I/O with its own timeout.
    scanned = hostkeys.scan_host_key(host, port)
    with transaction.atomic():
        try:
            server = Server.objects.create(
                name=name, kind=Server.KIND_SSH, host=host, port=port, user=user,
                private_key=private_key, scanned_host_key=scanned,
            )
        except IntegrityError:
            raise Conflict(f"A server named {name!r} already exists; choose another name.") from None
        audit.record(principal, "server.add", server, scope=scopes.SERVER_WRITE,
                     diff={"host": host, "port": port, "user": user, "host_key": hostkeys.fingerprint(scanned)})
    logger.info("server=%s added host=%s port=%s", server.pk, host, port)
    return server


@audit.records_denials("server.approve_host_key")
def approve_host_key(principal, server: Server, fingerprint: str) -> Server:
    require_scope(principal, scopes.SERVER_WRITE)
    if server.is_local:
        raise InvalidInput(f"Server {server.name!r} is the local engine and has no host key.")
    if not server.scanned_host_key:
        raise InvalidInput(f"Server {server.name!r} has no scanned host key; add it again with daoflow server add.")
    offered = hostkeys.fingerprint(server.scanned_host_key)
    if fingerprint.strip() != offered:
        raise InvalidInput(
            f"--fingerprint: {fingerprint!r} does not match the key that {server.name} offered ({offered}); "
            "compare it with `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` run on the server.",
            field="fingerprint",
        )
    with transaction.atomic():
        server.approved_host_key = server.scanned_host_key
        server.approved_at = timezone.now()
        server.save(update_fields=["approved_host_key", "approved_at"])
        audit.record(principal, "server.approve_host_key", server, scope=scopes.SERVER_WRITE,
                     diff={"fingerprint": offered})
    return server


# -- services -------------------------------------------------------------


@audit.records_denials("service.create")
def create_service(principal, project: Project, environment: Environment, data: ServiceInput) -> Service:
    validated = _check_create_request(principal, project, data)

    with transaction.atomic():
        service = _new_service(project, environment, validated)
        try:
            with transaction.atomic():
                service.save()
        except IntegrityError:
            raise Conflict(f"Project {project.name!r} already has a service named {validated.name!r}.") from None
        changes = _creation_changes(service, validated)
        _apply_collections(service, validated, dry_run=False)
        audit.record(principal, "service.create", service, scope=scopes.SERVICE_UPDATE, diff=changes)
    logger.info("service=%s created in project=%s", service.pk, project.pk)
    return service


@audit.records_denials("service.create")
def preview_service_creation(principal, project: Project, environment: Environment, data: ServiceInput) -> dict:
    """Run every check of create_service and return the changes it would make, writing nothing."""
    validated = _check_create_request(principal, project, data)
    service = _new_service(project, environment, validated)
    return _creation_changes(service, validated)


def _check_create_request(principal, project: Project, data: ServiceInput):
    require_scope(principal, scopes.SERVICE_UPDATE, project)
    if data.name is None:
        raise InvalidInput("--name is required: give the service a name (a DNS label such as api).", field="name")
    if data.source_type is None:
        raise InvalidInput("--source-type is required: use compose, dockerfile or image.", field="source_type")
    if data.set_env:
        require_scope(principal, scopes.ENV_WRITE, project)
    return validate_input(data)


def _new_service(project: Project, environment: Environment, validated) -> Service:
    """Build the unsaved service and run the checks that need it: name taken, source complete, ports free."""
    if Service.objects.filter(project=project, name=validated.name).exists():
        raise Conflict(f"Project {project.name!r} already has a service named {validated.name!r}; choose another name.")
    service = Service(project=project, environment=environment, name=validated.name,
                      target_server=validated.target_server, **validated.scalars)
    service.compose_project = validation.compose_project_name(project.name, environment.name, service.name)
    check_source_complete(service)
    check_port_conflicts(service, validated.add_ports)
    return service


def _creation_changes(service: Service, validated) -> dict:
    changes = {
        "name": {"before": None, "after": service.name},
        "project": {"before": None, "after": service.project.name},
        "environment": {"before": None, "after": service.environment.name},
        "compose_project": {"before": None, "after": service.compose_project},
    }
    if validated.target_server is not None:
        changes["target_server"] = {"before": None, "after": validated.target_server.name}
    changes.update({key: {"before": None, "after": _shown(key, value)} for key, value in validated.scalars.items()})
    changes.update(_apply_collections(service, validated, dry_run=True))
    return changes


def _shown(field: str, value):
    """Return a field's value as output and audit entries show it, with repository credentials hidden."""
    if field == "repository_url" and value:
        return validation.redact_url(value)
    return value


@audit.records_denials("service.update")
def update_service(principal, service: Service, data: ServiceInput, *, dry_run: bool = False) -> dict:
    """Apply the requested changes; return them as {field: {"before", "after"}}."""
    require_scope(principal, scopes.SERVICE_UPDATE, service)
    if data.set_env or data.unset_env:
        require_scope(principal, scopes.ENV_WRITE, service)
    validated = validate_input(data)

    with transaction.atomic():
        service = Service.objects.select_for_update().get(pk=service.pk)
        changes: dict = {}
        for name, value in validated.scalars.items():
            before = getattr(service, name)
            if before != value:
                changes[name] = {"before": _shown(name, before), "after": _shown(name, value)}
                setattr(service, name, value)
        if validated.name is not None and validated.name != service.name:
            if Service.objects.filter(project_id=service.project_id, name=validated.name).exclude(pk=service.pk).exists():
                raise Conflict(
                    f"{data.label('name')}: project {service.project.name!r} already has a service named "
                    f"{validated.name!r}; choose another name."
                )
            changes["name"] = {"before": service.name, "after": validated.name}
            service.name = validated.name
        if validated.target_server_given:
            before = service.target_server.name if service.target_server else None
            after = validated.target_server.name if validated.target_server else None
            if before != after:
                changes["target_server"] = {"before": before, "after": after}
                service.target_server = validated.target_server

        check_source_complete(service)
        changes.update(_apply_collections(service, validated, dry_run=True))
        remaining = _ports_after(service, validated)
        check_port_conflicts(service, remaining)
        if dry_run or not changes:
            transaction.set_rollback(True)
            return changes

        try:
            with transaction.atomic():
                service.save()
        except IntegrityError:
            raise Conflict(f"Project {service.project.name!r} already has a service named {service.name!r}.") from None
        _apply_collections(service, validated, dry_run=False)
        audit.record(principal, "service.update", service, scope=scopes.SERVICE_UPDATE, diff=changes)
    logger.info("service=%s updated fields=%s", service.pk, ",".join(sorted(changes)))
    return changes


def _ports_after(service: Service, validated) -> list:
    removed = {spec.to_short() for spec in validated.remove_ports}
    kept = [row.spec for row in service.ports.all() if row.spec.to_short() not in removed]
    return kept + [spec for spec in validated.add_ports if spec.to_short() not in {k.to_short() for k in kept}]


def _apply_collections(service: Service, validated, *, dry_run: bool) -> dict:
    """Compute (and unless dry_run, write) port, volume and env changes."""
    changes: dict = {}

    current_ports = [row.spec.to_short() for row in service.ports.all()] if service.pk else []
    removed = [spec.to_short() for spec in validated.remove_ports]
    for spec_text in removed:
        if spec_text not in current_ports:
            raise InvalidInput(
                f"--remove-port: {spec_text!r} is not a port of {service.name}; its ports are "
                f"{', '.join(current_ports) or 'none'}.",
                field="remove_port",
            )
    added = [spec for spec in validated.add_ports if spec.to_short() not in current_ports or spec.to_short() in removed]
    new_ports = [p for p in current_ports if p not in removed] + [spec.to_short() for spec in added]
    if new_ports != current_ports:
        changes["ports"] = {"before": current_ports, "after": new_ports}

    current_volumes = [row.spec.to_short() for row in service.volumes.all()] if service.pk else []
    removed_volumes = [spec.to_short() for spec in validated.remove_volumes]
    for spec_text in removed_volumes:
        if spec_text not in current_volumes:
            raise InvalidInput(
                f"--remove-volume: {spec_text!r} is not a volume of {service.name}; its volumes are "
                f"{', '.join(current_volumes) or 'none'}.",
                field="remove_volume",
            )
    added_volumes = [
        spec for spec in validated.add_volumes
        if spec.to_short() not in current_volumes or spec.to_short() in removed_volumes
    ]
    new_volumes = [v for v in current_volumes if v not in removed_volumes] + [s.to_short() for s in added_volumes]
    if new_volumes != current_volumes:
        changes["volumes"] = {"before": current_volumes, "after": new_volumes}

    env_changes = _env_changes(service, validated)
    if env_changes:
        changes["env"] = env_changes

    if dry_run:
        return changes

    if removed:
        for row in service.ports.all():
            if row.spec.to_short() in removed:
                row.delete()
    for spec in added:
        PortMapping.objects.create(service=service, target=spec.target, published=spec.published,
                                   host_ip=spec.host_ip, protocol=spec.protocol)
    if removed_volumes:
        for row in service.volumes.all():
            if row.spec.to_short() in removed_volumes:
                row.delete()
    for spec in added_volumes:
        VolumeMount.objects.create(service=service, type=spec.type, source=spec.source, target=spec.target,
                                   read_only=spec.read_only, options=dict(spec.options))
    for key, value, secret in validated.set_env:
        EnvironmentVariable.objects.update_or_create(
            project=service.project, environment=service.environment, service=service, key=key,
            defaults={"value": value, "secret": secret},
        )
    if validated.unset_env:
        EnvironmentVariable.objects.filter(service=service, key__in=validated.unset_env).delete()
    return changes


def _env_changes(service: Service, validated) -> dict:
    current = {row.key: row for row in service.variables.all()} if service.pk else {}
    changes: dict = {}
    for key, value, secret in validated.set_env:
        row = current.get(key)
        # A secret is always reported as changed: "no change" would confirm
        # a guessed value to a caller who may not read secrets.
        if row is not None and row.value == value and row.secret == secret and not secret:
            continue
        if row is None:
            before = None
        elif row.secret:
            before = MASK
        else:
            before = row.value
        changes[key] = {"before": before, "after": MASK if secret else value}
    for key in validated.unset_env:
        row = current.get(key)
        if row is None:
            raise InvalidInput(
                f"--unset-env: {service.name} has no variable {key!r}; list them with "
                f"`daoflow env list --service {service.name}`.",
                field="unset_env",
            )
        changes[key] = {"before": MASK if row.secret else row.value, "after": None}
    return changes


__all__ = [
    "SCALAR_FIELDS",
    "ServiceInput",
    "add_server",
    "approve_host_key",
    "create_environment",
    "create_project",
    "create_service",
    "ensure_local_server",
    "preview_service_creation",
    "update_service",
]
