"""Turning user input (flags, API fields, admin forms) into validated service changes.

Every field is validated before anything is written, so a request with five
valid changes and one invalid one changes nothing. Errors name the flag or
field as the caller knows it.
"""

import dataclasses
import sys
from dataclasses import dataclass, field

from daoflow.errors import Conflict, InvalidInput

from . import validation
from .models import Service

MASK = "********"

SCALAR_FIELDS = (
    "source_type",
    "image",
    "repository_url",
    "branch",
    "compose_path",
    "compose_document",
    "compose_service",
    "dockerfile_path",
)


@dataclass
class ServiceInput:
    """Requested changes; None means "leave as it is"."""

    name: str | None = None
    source_type: str | None = None
    image: str | None = None
    repository_url: str | None = None
    branch: str | None = None
    compose_path: str | None = None
    compose_document: str | None = None
    compose_service: str | None = None
    dockerfile_path: str | None = None
    target_server: str | None = None
    add_ports: list = field(default_factory=list)
    remove_ports: list = field(default_factory=list)
    add_volumes: list = field(default_factory=list)
    remove_volumes: list = field(default_factory=list)
    set_env: list = field(default_factory=list)  # (key, value, secret)
    unset_env: list = field(default_factory=list)
    # The flag each field came from, for error messages ("--image").
    labels: dict = field(default_factory=dict)

    def label(self, name: str) -> str:
        return self.labels.get(name, name)


@dataclass
class ValidatedInput:
    scalars: dict
    name: str | None
    target_server: object | None
    target_server_given: bool
    add_ports: list
    remove_ports: list
    add_volumes: list
    remove_volumes: list
    set_env: list
    unset_env: list


def _invalid(error: validation.InvalidValue, flag: str) -> InvalidInput:
    """Convert the error, naming the flag or field as the caller wrote it ("--image", not "image")."""
    message = error.message
    prefix = f"{error.field}: "
    if message.startswith(prefix):
        message = f"{flag}: {message[len(prefix):]}"
    elif not message.startswith(f"{flag}:"):
        message = f"{flag}: {message}"
    return InvalidInput(message, field=flag)


def validate_input(data: ServiceInput) -> ValidatedInput:
    """Validate every field of the request; raise InvalidInput for the first bad one."""
    from .models import Server

    scalars: dict = {}
    try:
        if data.source_type is not None:
            if data.source_type not in dict(Service.SOURCE_CHOICES):
                raise InvalidInput(
                    f"{data.label('source_type')}: {data.source_type!r} is not a source type; "
                    "use compose, dockerfile or image.",
                    field="source_type",
                )
            scalars["source_type"] = data.source_type
        name = None
        if data.name is not None:
            name = _checked(validation.validate_name, data, "name", "name", data.name)
        if data.image is not None:
            scalars["image"] = data.image and _checked(validation.validate_image_reference, data, "image", None, data.image)
        if data.repository_url is not None:
            scalars["repository_url"] = data.repository_url and _checked(
                validation.validate_repository_url, data, "repository_url", None, data.repository_url
            )
        if data.branch is not None:
            scalars["branch"] = data.branch and _checked(validation.validate_branch, data, "branch", None, data.branch)
        for path_field in ("compose_path", "dockerfile_path"):
            value = getattr(data, path_field)
            if value is not None:
                scalars[path_field] = value and _checked(
                    validation.validate_relative_path, data, path_field, path_field, value
                )
        if data.compose_document is not None:
            if data.compose_document:
                _checked(validation.parse_compose_document, data, "compose_document", None, data.compose_document,
                         data.label("compose_document"))
            scalars["compose_document"] = data.compose_document
        if data.compose_service is not None:
            scalars["compose_service"] = _checked(
                validation.validate_compose_service, data, "compose_service", "compose_service", data.compose_service
            )

        add_ports = [_checked(_parse_port, data, "port", None, spec) for spec in data.add_ports]
        remove_ports = [_checked(_parse_port, data, "remove_port", None, spec) for spec in data.remove_ports]
        add_volumes = [_checked(_parse_volume, data, "volume", None, spec) for spec in data.add_volumes]
        remove_volumes = [_checked(_parse_volume, data, "remove_volume", None, spec) for spec in data.remove_volumes]
        set_env = []
        seen_keys: set[str] = set()
        for key, value, secret in data.set_env:
            _checked(validation.validate_env_key, data, "env", None, key)
            _checked(validation.validate_env_value, data, "env", None, value)
            if key in seen_keys:
                # Silently keeping the last one hides a typo in a long command.
                raise InvalidInput(
                    f"{data.label('env')}: the key {key!r} is given twice; give each key once.", field="env"
                )
            seen_keys.add(key)
            set_env.append((key, value, bool(secret)))
        for key in data.unset_env:
            _checked(validation.validate_env_key, data, "unset_env", None, key)
    except validation.InvalidValue as error:  # pragma: no cover - _checked converts
        raise _invalid(error, error.field) from None

    _check_lengths(data, scalars)

    target_server = None
    if data.target_server:
        _checked(validation.validate_name, data, "target_server", "target_server", data.target_server)
        target_server = Server.objects.filter(name=data.target_server).first()
        if target_server is None:
            raise InvalidInput(
                f"{data.label('target_server')}: no server is named {data.target_server!r}; "
                "list servers with `daoflow server list`.",
                field="target_server",
            )
    return ValidatedInput(
        scalars=scalars,
        name=name,
        target_server=target_server,
        target_server_given=data.target_server is not None,
        add_ports=add_ports,
        remove_ports=remove_ports,
        add_volumes=add_volumes,
        remove_volumes=remove_volumes,
        set_env=set_env,
        unset_env=list(data.unset_env),
    )


def _parse_port(spec):
    return validation.parse_port(validation.load_mapping_argument("port", spec))


def _parse_volume(spec):
    return validation.parse_volume(validation.load_mapping_argument("volume", spec))


def _check_lengths(data: ServiceInput, scalars: dict) -> None:
    """Reject values longer than their column, with the limit, before the database does."""
    for name, value in scalars.items():
        limit = Service._meta.get_field(name).max_length
        if value and limit and len(value) > limit:
            raise InvalidInput(
                f"{data.label(name)}: the value is {len(value)} characters long; the limit is {limit}.",
                field=name,
            )


def _checked(function, data: ServiceInput, field_name: str, first_arg, value, *extra):
    try:
        if first_arg is None:
            return function(value, *extra)
        return function(first_arg, value, *extra)
    except validation.InvalidValue as error:
        raise _invalid(error, data.label(field_name)) from None


def read_input_file(path: str, flag: str) -> str:
    """Read a file named by a flag as UTF-8, byte for byte: no newline translation or stripping.

    "-" reads standard input. The bytes are decoded as strict UTF-8, so a value reaches
    the container exactly as it is in the file.
    """
    try:
        if path == "-":
            stream = sys.stdin
            data = stream.buffer.read() if hasattr(stream, "buffer") else stream.read().encode("utf-8")
        else:
            if "\0" in path:
                raise InvalidInput(f"{flag}: the file name {path!r} contains a NUL character. Fix the path.",
                                   field=flag)
            with open(path, "rb") as handle:
                data = handle.read()
    except FileNotFoundError:
        raise InvalidInput(f"{flag}: file {path!r} does not exist. Check the path.", field=flag) from None
    except IsADirectoryError:
        raise InvalidInput(f"{flag}: {path!r} is a directory. Name a file.", field=flag) from None
    except OSError as error:
        raise InvalidInput(f"{flag}: cannot read {path!r}: {error.strerror}. Check the path and its permissions.",
                           field=flag) from None
    except UnicodeEncodeError:
        raise InvalidInput(f"{flag}: the file name {path!r} is not valid UTF-8. Rename the file.",
                           field=flag) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InvalidInput(
            f"{flag}: {path!r} is not UTF-8 text (invalid byte at offset {error.start}). Convert it to UTF-8.",
            field=flag,
        ) from None


def check_source_complete(service: Service) -> None:
    """Check that the result of a change has the fields its source type needs."""
    label = {"image": "--image", "repository_url": "--repository-url"}
    if service.source_type == Service.SOURCE_IMAGE and not service.image:
        raise InvalidInput(
            f"An image service needs an image reference: set {label['image']} (for example nginx:1.27).",
            field="image",
        )
    if service.source_type == Service.SOURCE_DOCKERFILE and not service.repository_url:
        raise InvalidInput(
            "A dockerfile service needs a Git repository: set --repository-url "
            "(https://, ssh://, git@host:path or file:///path).",
            field="repository_url",
        )
    if service.source_type == Service.SOURCE_COMPOSE and not (service.repository_url or service.compose_document):
        raise InvalidInput(
            "A compose service needs a compose file: set --repository-url (with --compose-path) "
            "or --compose-file FILE for an inline document.",
            field="compose_document",
        )
    if service.source_type == Service.SOURCE_COMPOSE and service.repository_url and service.compose_document:
        raise InvalidInput(
            "A compose service takes its compose file from the repository or from an inline document, "
            "not both: clear one of --repository-url and --compose-file.",
            field="compose_document",
        )
    _check_compose_service(service)


def _check_compose_service(service: Service) -> None:
    """For an inline document without include, the compose service must be one it declares.

    Stacks from a repository, or with include, are checked by the resolve step,
    where the whole stack is known.
    """
    if not (service.compose_service and service.compose_document):
        return
    document = validation.parse_compose_document(service.compose_document)
    if "include" in document:
        return
    declared = list(document.get("services") or {})
    if service.compose_service not in declared:
        raise InvalidInput(
            f"--compose-service: {service.compose_service!r} is not a service of the compose document; "
            f"it declares {', '.join(declared)}.",
            field="compose_service",
        )


def check_port_conflicts(service: Service, ports: list[validation.PortMapping]) -> None:
    """Reject a host port that another service on the same server already publishes, or that repeats."""
    from .models import PortMapping as PortRow

    for index, port in enumerate(ports):
        for other in ports[index + 1:]:
            if validation.ports_conflict(port, other):
                raise Conflict(
                    f"port: {port.to_short()!r} and {other.to_short()!r} publish the same host port; "
                    "remove one of them."
                )
    server = service.server
    if server is None:
        return
    others = (
        PortRow.objects.exclude(service_id=service.pk)
        .select_related("service__project", "service__environment", "service__target_server")
        .exclude(published="")
    )
    for row in others:
        if row.service.server != server:
            continue
        for port in ports:
            if validation.ports_conflict(port, row.spec):
                raise Conflict(
                    f"port: {port.to_short()!r} conflicts with {row.spec.to_short()!r} of service "
                    f"{row.service} on server {server.name}; choose another host port or host IP."
                )


def port_dict(spec) -> dict:
    return dataclasses.asdict(spec)
