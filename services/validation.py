"""Validate and normalize user input for services, ports, volumes and Compose files.

Models' clean(), the DRF serializers, the admin and the CLI all call these functions,
so one bad input gets the same error message everywhere. This module imports only the
standard library and PyYAML, so it also works without Django settings.

Every check raises InvalidValue, a ValueError whose message names the field and the
value and gives the fix.
"""

from __future__ import annotations

import hashlib
import ipaddress
import posixpath
import re
from dataclasses import dataclass
from typing import Any, Iterable
from urllib.parse import urlsplit

import yaml


class InvalidValue(ValueError):
    """Error for one rejected input value.

    field is the user-facing field or flag name ("image", "port", "--env"), value is the
    rejected input, and message is the full sentence shown to the user.
    """

    def __init__(self, field: str, value: Any, message: str):
        # Passing all three to ValueError keeps the exception picklable, which Celery
        # needs when a task fails with it.
        super().__init__(field, value, message)
        self.field = field
        self.value = value
        self.message = message

    def __str__(self) -> str:
        return self.message


def _require_str(field: str, value: Any, example: str) -> str:
    if not isinstance(value, str):
        raise InvalidValue(
            field, value, f"{field}: expected a string such as {example!r}, got {type(value).__name__} {value!r}."
        )
    if _has_surrogate(value):
        raise InvalidValue(
            field,
            value,
            f"{field}: {value!r} is not valid UTF-8 text. Pass the value as UTF-8, "
            f"for example by setting a UTF-8 locale such as LANG=C.UTF-8 in the shell.",
        )
    return value


def _has_surrogate(text: str) -> bool:
    # Python decodes command-line bytes that are not UTF-8 into lone surrogates
    # (PEP 383). They cannot be encoded for the database, YAML or the container.
    return any("\ud800" <= char <= "\udfff" for char in text)


def _has_control_char(text: str) -> bool:
    return any(ord(char) < 0x20 or ord(char) == 0x7F for char in text)


# ---------------------------------------------------------------------------
# Names
# ---------------------------------------------------------------------------

_DNS_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?", re.ASCII)


def validate_name(field: str, value: str) -> str:
    """Validate a service, project or environment name as a DNS label and return it.

    A DNS label is 1 to 63 lowercase letters, digits and hyphens that starts and ends
    with a letter or digit, so the name is also a valid host name on the Compose network.
    """
    _require_str(field, value, "my-app")
    if _DNS_LABEL.fullmatch(value):
        return value

    if not value:
        reason = "the name is empty"
    elif len(value) > 63:
        reason = f"the name has {len(value)} characters and the maximum is 63"
    elif value != value.lower() and _DNS_LABEL.fullmatch(value.lower()):
        reason = "the name must be lowercase"
    elif value.startswith("-") or value.endswith("-"):
        reason = "the name must start and end with a letter or digit"
    else:
        reason = "only lowercase letters, digits and hyphens are allowed"
    raise InvalidValue(
        field,
        value,
        f"{field}: {value!r} is not a valid name because {reason}. "
        f"Use 1 to 63 lowercase letters, digits and hyphens, for example 'my-app'.",
    )


# ---------------------------------------------------------------------------
# SSH targets
# ---------------------------------------------------------------------------


def validate_ssh_host(field: str, value: str) -> str:
    """Validate the host name or IP address of an SSH target and return it."""
    _require_str(field, value, "192.0.2.10")
    if not value or value.startswith("-") or any(char.isspace() for char in value) or _has_control_char(value):
        raise InvalidValue(
            field,
            value,
            f"{field}: {value!r} is not a host name or address. Give a host name such as web1.example.com "
            f"or an IP address, without spaces and not starting with '-'.",
        )
    return value


def validate_ssh_user(field: str, value: str) -> str:
    """Validate the login user of an SSH target and return it."""
    _require_str(field, value, "root")
    if not value or value.startswith("-") or any(char.isspace() or char in "@:" for char in value):
        raise InvalidValue(
            field,
            value,
            f"{field}: {value!r} is not a user name. Give a login name such as root or deploy, "
            f"without spaces, '@' or ':' and not starting with '-'.",
        )
    return value


def validate_tcp_port(field: str, value: Any) -> int:
    """Validate a TCP port number from 1 to 65535 and return it as an int."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise InvalidValue(field, value, f"{field}: {value!r} is not a TCP port. Give a number from 1 to 65535.")
    return value


# ---------------------------------------------------------------------------
# Image references
# ---------------------------------------------------------------------------

# The grammar comes from reference.go in github.com/distribution/reference. A reference
# is [registry[:port]/]path[:tag][@digest].
_PATH_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*", re.ASCII)
_DOMAIN_NAME = re.compile(
    r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*", re.ASCII
)
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", re.ASCII)
_SHA256_DIGEST = re.compile(r"sha256:[a-f0-9]{64}", re.ASCII)
_IMAGE_NAME_MAX = 255
_IMAGE_EXAMPLES = "for example nginx:1.27 or registry.example.com:5000/team/api:1.4"


def _reject_image(value: str, reason: str) -> InvalidValue:
    message = f"image: {value!r} is not a valid image reference: {reason} ({_IMAGE_EXAMPLES})."
    return InvalidValue("image", value, message)


def _check_registry(value: str, registry: str) -> None:
    """Check a registry host with an optional port: a domain name, IPv4 or [IPv6] address."""
    if registry.startswith("["):
        address, bracket, port = registry[1:].partition("]")
        if not bracket:
            raise _reject_image(value, f"the registry {registry!r} has no closing ']'")
        try:
            ipaddress.IPv6Address(address)
        except ValueError:
            reason = f"the registry {registry!r} does not contain a valid IPv6 address"
            raise _reject_image(value, reason) from None
        if port and not port.startswith(":"):
            raise _reject_image(value, f"the registry {registry!r} must be [IPv6] or [IPv6]:port")
        port = port[1:] if port else None
    else:
        host, colon, port_text = registry.partition(":")
        if not _DOMAIN_NAME.fullmatch(host):
            raise _reject_image(value, f"the registry host {host!r} is not a valid host name")
        port = port_text if colon else None

    if port is not None and not (port.isascii() and port.isdigit() and len(port) <= 5 and 0 < int(port) <= 65535):
        raise _reject_image(value, f"the registry port {port!r} must be a number from 1 to 65535")


def _split_registry(name: str) -> tuple[str, str]:
    """Split an image name into (registry, path), with registry "" for Docker Hub.

    The first component is a registry only when a path follows it and it contains a '.'
    or ':' or is "localhost". Docker uses this rule to read "myhost:5000/api" as a
    registry and "team/api" as a Docker Hub path.
    """
    first, slash, rest = name.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        return first, rest
    return "", name


def validate_image_reference(value: str) -> str:
    """Validate a Docker image reference such as registry:5000/team/api:1.4@sha256:<hex>.

    Returns the string unchanged. Only sha256 digests are accepted.
    """
    _require_str("image", value, "nginx:1.27")
    if not value:
        raise _reject_image(value, "the reference is empty")
    if not value.isascii() or any(char.isspace() for char in value) or _has_control_char(value):
        raise _reject_image(value, "it may contain only ASCII letters, digits and . _ - / : @ without spaces")
    if "://" in value:
        raise _reject_image(value, "remove the URL scheme because image references have none")

    remainder, at, digest = value.partition("@")
    if at and not _SHA256_DIGEST.fullmatch(digest):
        raise _reject_image(value, f"the digest {digest!r} must be sha256: followed by 64 lowercase hex digits")

    # A ':' after the last '/' starts the tag. An earlier ':' belongs to the registry port.
    name, tag = remainder, None
    colon = remainder.rfind(":")
    if colon > remainder.rfind("/"):
        name, tag = remainder[:colon], remainder[colon + 1 :]
    if tag is not None and not _TAG.fullmatch(tag):
        raise _reject_image(
            value,
            f"the tag {tag!r} must be 1 to 128 letters, digits, '_', '.' or '-' "
            f"and must not start with '.' or '-'",
        )

    if not name:
        raise _reject_image(value, "the repository name is missing")
    if len(name) > _IMAGE_NAME_MAX:
        reason = f"the repository name has {len(name)} characters and the maximum is {_IMAGE_NAME_MAX}"
        raise _reject_image(value, reason)

    registry, path = _split_registry(name)
    if registry:
        _check_registry(value, registry)
    for component in path.split("/"):
        if _PATH_COMPONENT.fullmatch(component):
            continue
        if _PATH_COMPONENT.fullmatch(component.lower()):
            raise _reject_image(value, "repository names must be lowercase")
        if not component:
            raise _reject_image(value, "the repository path has an empty component")
        raise _reject_image(
            value,
            f"the path component {component!r} may contain only lowercase letters and digits "
            f"separated by '.', '_', '__' or '-'",
        )
    return value


# ---------------------------------------------------------------------------
# Git repository URLs, paths and branches
# ---------------------------------------------------------------------------

_REPOSITORY_EXAMPLES = (
    "https://github.com/team/app.git, ssh://git@github.com/team/app.git, git@github.com:team/app.git "
    "or file:///srv/git/app.git"
)
# Git's remote-helper form is "<transport>::<address>", and the "ext::" helper runs any command.
_REMOTE_HELPER = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*::")
_SCP_LIKE = re.compile(r"(?P<user>[^@/:\[\]]+)@(?P<host>\[[^\]]*\]|[^:/\[\]]*):(?P<path>.*)", re.DOTALL)
_URL_PASSWORD = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://[^/@:]*):[^/@]*@")
# https://TOKEN@host: hosting services accept an access token as the user name.
_HTTP_USER_TOKEN = re.compile(r"^(https?://)[^/@:]+@", re.IGNORECASE)


def redact_url(value: str) -> str:
    """Hide credentials in a repository URL so output and audit entries don't leak them.

    The password of scheme://user:password@host becomes '***', and so does the
    whole user name of an https:// URL, where it is usually an access token.
    The user of ssh:// and scp-like URLs (git@host:path) is kept: it names an
    account, and the credential is the SSH key.
    """
    return _HTTP_USER_TOKEN.sub(r"\1***@", _URL_PASSWORD.sub(r"\1:***@", value))


def _reject_repository(value: str, reason: str) -> InvalidValue:
    redacted = redact_url(value)
    return InvalidValue(
        "repository_url",
        value,
        f"repository_url: {redacted!r} is not a supported repository URL: {reason}. Use {_REPOSITORY_EXAMPLES}.",
    )


def _check_ssh_parts(value: str, user: str | None, host: str, path: str) -> None:
    # Git rejects ssh hosts, users and paths that start with '-' because ssh would read
    # them as options (CVE-2017-1000117). Rejecting them here gives a clear message first.
    if not host:
        raise _reject_repository(value, "the host is empty")
    for part_name, part in (("user", user or ""), ("host", host), ("path", path)):
        if part.startswith("-"):
            raise _reject_repository(value, f"the {part_name} must not start with '-'")
    if not path.strip("/"):
        raise _reject_repository(value, "the repository path is missing")


def _check_url_form(value: str) -> None:
    scheme = value.split("://", 1)[0].lower()
    if scheme == "http":
        raise _reject_repository(value, "plain http:// sends code and credentials unencrypted, so use https://")
    if scheme == "git":
        raise _reject_repository(
            value, "the git:// protocol is unauthenticated and unencrypted, so use https:// or ssh://"
        )
    if scheme not in ("https", "ssh", "file"):
        raise _reject_repository(value, f"the scheme {scheme!r} is not supported")

    try:
        parts = urlsplit(value)
        port = parts.port  # Raises ValueError for a port that is not a number from 0 to 65535.
    except ValueError as error:
        raise _reject_repository(value, f"the URL cannot be parsed ({error})") from None

    if scheme == "file":
        if parts.netloc:
            raise _reject_repository(value, "file URLs must have an empty host, as in file:///absolute/path")
        if not parts.path.strip("/"):
            raise _reject_repository(value, "the repository path is missing")
        return

    if port == 0:
        raise _reject_repository(value, "the port must be a number from 1 to 65535")
    if scheme == "https":
        if not parts.hostname:
            raise _reject_repository(value, "the host is empty")
        if parts.hostname.startswith("-"):
            raise _reject_repository(value, "the host must not start with '-'")
        if not parts.path.strip("/"):
            raise _reject_repository(value, "the repository path is missing")
        return

    _check_ssh_parts(value, parts.username, parts.hostname or "", parts.path)


def validate_repository_url(value: str) -> str:
    """Validate a git remote URL that is safe to pass to `git clone` and return it unchanged.

    Accepted forms are https://, ssh://, scp-like user@host:path and file:///absolute/path.
    The scp-like form needs the user@ part, so that "c:/repo" is never read as a host.
    """
    _require_str("repository_url", value, "https://github.com/team/app.git")
    if not value:
        raise _reject_repository(value, "the URL is empty")
    if value.startswith("-"):
        raise _reject_repository(value, "it must not start with '-' because git would read it as an option")
    if _REMOTE_HELPER.match(value):
        raise _reject_repository(
            value, "git remote-helper URLs such as ext:: are not allowed because they can run commands"
        )
    if any(char.isspace() for char in value) or _has_control_char(value):
        raise _reject_repository(value, "it must not contain spaces or control characters")

    if "://" in value:
        _check_url_form(value)
        return value

    scp = _SCP_LIKE.fullmatch(value)
    if scp is None:
        raise _reject_repository(value, "it is neither a URL with a scheme nor user@host:path")
    host = scp["host"]
    if host.startswith("["):
        host = host[1:-1]
    _check_ssh_parts(value, scp["user"], host, scp["path"])
    return value


def validate_relative_path(field: str, value: str) -> str:
    """Validate a path inside the repository and return its normalized POSIX form.

    "./deploy//compose.yaml" becomes "deploy/compose.yaml". The path must name a file below
    the repository root, so absolute paths and paths that leave the root with ".." are rejected.
    """
    _require_str(field, value, "deploy/compose.yaml")
    example = "Use a path relative to the repository root, for example 'deploy/compose.yaml'."
    if not value:
        raise InvalidValue(field, value, f"{field}: the path is empty. {example}")
    if _has_control_char(value):
        message = f"{field}: {value!r} contains a control character such as NUL or a newline. {example}"
        raise InvalidValue(field, value, message)
    if value.startswith("/"):
        raise InvalidValue(field, value, f"{field}: {value!r} is an absolute path. {example}")

    normalized = posixpath.normpath(value)
    if normalized == ".." or normalized.startswith("../"):
        raise InvalidValue(field, value, f"{field}: {value!r} points outside the repository. {example}")
    if normalized == ".":
        raise InvalidValue(field, value, f"{field}: {value!r} names the repository root, not a file. {example}")
    if normalized.startswith("-"):
        raise InvalidValue(
            field, value, f"{field}: {value!r} starts with '-', which tools would read as an option. {example}"
        )
    return normalized


_BRANCH_FORBIDDEN_CHARS = frozenset(" ~^:?*[\\")


def _branch_problem(value: str) -> str | None:
    """Return why git check-ref-format would reject the branch name, or None when it is valid."""
    if not value:
        return "the branch name is empty"
    if _has_control_char(value):
        return "it contains a control character"
    forbidden = sorted(_BRANCH_FORBIDDEN_CHARS.intersection(value))
    if forbidden:
        return "it contains " + ", ".join(repr(char) for char in forbidden)
    if value.startswith("-"):
        return "it starts with '-'"
    if ".." in value:
        return "it contains '..'"
    if "@{" in value:
        return "it contains '@{'"
    if value == "@":
        return "'@' alone is not a branch name"
    if value.startswith("/") or value.endswith("/") or "//" in value:
        return "it has an empty path component (a leading, trailing or double '/')"
    if value.endswith("."):
        return "it ends with '.'"
    for component in value.split("/"):
        if component.startswith("."):
            return f"the component {component!r} starts with '.'"
        if component.endswith(".lock"):
            return f"the component {component!r} ends with '.lock'"
    return None


def validate_branch(value: str) -> str:
    """Validate a branch name with the main rules of git check-ref-format and return it."""
    _require_str("branch", value, "main")
    problem = _branch_problem(value)
    if problem is not None:
        message = (
            f"branch: {value!r} is not a valid git branch name because {problem}. "
            f"Use a name such as 'main' or 'release/1.4'."
        )
        raise InvalidValue("branch", value, message)
    return value


# ---------------------------------------------------------------------------
# Ports
# ---------------------------------------------------------------------------

_PORT_OR_RANGE = re.compile(r"(\d{1,5})(?:-(\d{1,5}))?", re.ASCII)
_PORT_PROTOCOLS = ("tcp", "udp")
_PORT_LONG_KEYS = frozenset({"target", "published", "host_ip", "protocol"})
_PORT_EXAMPLES = "for example 8080:80, 127.0.0.1:5353:53/udp or [::1]:8080:80"


def _reject_port(spec: Any, reason: str) -> InvalidValue:
    return InvalidValue("port", spec, f"port: {spec!r} is not a valid port mapping: {reason} ({_PORT_EXAMPLES}).")


@dataclass(frozen=True)
class PortMapping:
    """A published container port, stored in canonical form.

    target and published are a port ("80") or a range ("8000-8002"). An empty published
    port lets Docker pick a free host port. An empty host_ip binds all interfaces, and
    an IPv6 host_ip is stored without brackets.
    """

    target: str
    published: str = ""
    host_ip: str = ""
    protocol: str = "tcp"

    def to_short(self) -> str:
        """Render the canonical short syntax, [HOST_IP:][PUBLISHED:]TARGET[/udp].

        "/tcp" is left out because it is the default. parse_port(m.to_short()) == m.
        """
        text = self.target
        if self.host_ip:
            host = f"[{self.host_ip}]" if ":" in self.host_ip else self.host_ip
            text = f"{host}:{self.published}:{text}"
        elif self.published:
            text = f"{self.published}:{text}"
        if self.protocol != "tcp":
            text = f"{text}/{self.protocol}"
        return text

    def to_compose(self) -> dict[str, Any] | str:
        """Render the entry for a Compose service's "ports" list.

        A single target port returns the long syntax dict, with target as an int and empty
        fields left out. Long syntax requires target to be an int, so a range returns the
        short syntax string instead, with an IPv6 host_ip in brackets and "/tcp" left out.
        """
        if "-" in self.target:
            return self.to_short()
        entry: dict[str, Any] = {"target": int(self.target)}
        if self.published:
            entry["published"] = self.published
        if self.host_ip:
            entry["host_ip"] = self.host_ip
        entry["protocol"] = self.protocol
        return entry


def _parse_port_range(spec: Any, role: str, text: str) -> tuple[int, int]:
    """Parse "80" or "8000-8002" into inclusive (first, last) port numbers."""
    match = _PORT_OR_RANGE.fullmatch(text)
    if match is None:
        raise _reject_port(spec, f"the {role} port {text!r} must be a number or a range such as 8000-8002")
    first = int(match[1])
    last = int(match[2]) if match[2] else first
    for number in (first, last):
        if not 1 <= number <= 65535:
            raise _reject_port(spec, f"the {role} port {number} is outside 1-65535")
    if last < first:
        raise _reject_port(spec, f"the {role} range {text!r} ends before it starts")
    return first, last


def _format_port_range(first: int, last: int) -> str:
    return str(first) if first == last else f"{first}-{last}"


def _parse_host_ip(spec: Any, text: str) -> str:
    """Validate a host IP address and return its canonical text, IPv6 without brackets."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        raise _reject_port(spec, f"the host IP {text!r} is not a valid IPv4 or IPv6 address") from None
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id:
        raise _reject_port(spec, f"the host IP {text!r} has a zone index, which Docker does not accept")
    return str(address)


def _build_port(spec: Any, target: str, published: str, host_ip: str, protocol: str) -> PortMapping:
    protocol = protocol.lower()
    if protocol not in _PORT_PROTOCOLS:
        raise _reject_port(spec, f"the protocol {protocol!r} must be tcp or udp")

    target_first, target_last = _parse_port_range(spec, "container", target)
    published_text = ""
    if published:
        published_first, published_last = _parse_port_range(spec, "published", published)
        if published_last - published_first != target_last - target_first:
            # Compose would map a host range onto one container port by picking any free
            # host port. That makes conflicts impossible to predict, so ranges must match.
            raise _reject_port(
                spec,
                "a published port or range needs a container port or range of the same length, "
                "such as 8000-8001:80-81",
            )
        published_text = _format_port_range(published_first, published_last)

    host_text = _parse_host_ip(spec, host_ip) if host_ip else ""
    return PortMapping(
        target=_format_port_range(target_first, target_last),
        published=published_text,
        host_ip=host_text,
        protocol=protocol,
    )


def _split_short_port(spec: str) -> tuple[str, str, str]:
    """Split [HOST_IP:][PUBLISHED:]TARGET (no protocol) into (host_ip, published, target)."""
    if spec.startswith("["):
        address, bracket, rest = spec[1:].partition("]")
        if not bracket or not rest.startswith(":"):
            raise _reject_port(spec, "write an IPv6 host IP as [ADDRESS]:PUBLISHED:TARGET")
        if ":" not in address:
            raise _reject_port(spec, "brackets are only for IPv6 addresses, so write an IPv4 host IP without them")
        published, colon, target = rest[1:].partition(":")
        if not colon:
            raise _reject_port(spec, "write an IPv6 host IP as [ADDRESS]:PUBLISHED:TARGET")
        return address, published, target

    parts = spec.split(":")
    if len(parts) == 1:
        return "", "", parts[0]
    if len(parts) == 2:
        if not parts[0]:
            raise _reject_port(spec, "the published port before ':' is empty")
        return "", parts[0], parts[1]
    if len(parts) == 3:
        if not parts[0]:
            raise _reject_port(spec, "the host IP before the first ':' is empty")
        return parts[0], parts[1], parts[2]
    raise _reject_port(spec, "it has too many ':' separators, and an IPv6 host IP must be in brackets")


def _parse_long_port(spec: dict[Any, Any]) -> PortMapping:
    unknown = sorted(str(key) for key in spec if key not in _PORT_LONG_KEYS)
    if unknown:
        raise _reject_port(
            spec,
            f"unknown keys {', '.join(unknown)}, because only target, published, host_ip and protocol are supported",
        )
    if "target" not in spec:
        raise _reject_port(spec, "the target key is missing")

    target = spec["target"]
    if isinstance(target, bool) or not isinstance(target, (int, str)):
        raise _reject_port(spec, "target must be a port number")
    target = str(target)
    if _PORT_OR_RANGE.fullmatch(target) and "-" in target:
        raise _reject_port(
            spec, "target must be a single port number, so write a range in the short syntax instead"
        )

    published = spec.get("published", "")
    if published is None:
        published = ""
    if isinstance(published, bool) or not isinstance(published, (int, str)):
        raise _reject_port(spec, "published must be a port number or range")

    fields = {"host_ip": spec.get("host_ip", ""), "protocol": spec.get("protocol", "tcp")}
    for key, field_value in fields.items():
        if field_value is None:
            fields[key] = ""
        elif not isinstance(field_value, str):
            raise _reject_port(spec, f"{key} must be a string")
    host_ip = fields["host_ip"]
    if host_ip.startswith("[") and host_ip.endswith("]"):
        host_ip = host_ip[1:-1]
    return _build_port(spec, target, str(published), host_ip, fields["protocol"] or "tcp")


def parse_port(spec: str | int | dict[str, Any]) -> PortMapping:
    """Parse a Compose port mapping in short syntax, as an int, or as a long syntax dict.

    The short syntax is [HOST_IP:][PUBLISHED:]TARGET[/PROTOCOL], where HOST_IP is IPv4 or
    [IPv6], ports and ranges lie in 1-65535 and the protocol is tcp or udp in any case.
    A published range must have the same length as the container range. An int is
    accepted because YAML loads an unquoted `- 80` as one.
    """
    if isinstance(spec, dict):
        return _parse_long_port(spec)
    if isinstance(spec, int) and not isinstance(spec, bool):
        return _build_port(spec, str(spec), "", "", "tcp")
    if not isinstance(spec, str):
        raise _reject_port(spec, f"expected a string or a mapping, got {type(spec).__name__}")
    if not spec:
        raise _reject_port(spec, "the value is empty")
    if any(char.isspace() for char in spec) or _has_control_char(spec):
        raise _reject_port(spec, "it must not contain spaces or control characters")

    mapping, slash, protocol = spec.rpartition("/")
    if not slash:
        mapping, protocol = spec, "tcp"
    elif not protocol:
        raise _reject_port(spec, "the protocol after '/' is empty")
    host_ip, published, target = _split_short_port(mapping)
    if not target:
        raise _reject_port(spec, "the container port is missing")
    return _build_port(spec, target, published, host_ip, protocol)


def _published_ports(mapping: PortMapping) -> range:
    if not mapping.published:
        return range(0)
    first, _, last = mapping.published.partition("-")
    return range(int(first), int(last or first) + 1)


def port_key(mapping: PortMapping) -> list[tuple[str, int, str]]:
    """Return the (host_ip, host port, protocol) triples that the mapping binds on the host.

    An empty host_ip is reported as "0.0.0.0". A mapping without a published port binds
    no fixed host port and returns [].
    """
    host_ip = mapping.host_ip or "0.0.0.0"
    return [(host_ip, port, mapping.protocol) for port in _published_ports(mapping)]


def _addresses_overlap(first: str, second: str) -> bool:
    """Return whether two host IPs (canonical text, "" for all interfaces) can clash on bind.

    "" overlaps everything, because Docker then listens on both 0.0.0.0 and [::].
    "0.0.0.0" overlaps every IPv4 address and "::" every IPv6 address.
    """
    if not first or not second or first == second:
        return True
    first_address = ipaddress.ip_address(first)
    second_address = ipaddress.ip_address(second)
    if first_address.version != second_address.version:
        return False
    return first_address.is_unspecified or second_address.is_unspecified


def ports_conflict(first: PortMapping, second: PortMapping) -> bool:
    """Return whether two mappings would try to bind the same host port and protocol."""
    if first.protocol != second.protocol:
        return False
    shared_ports = set(_published_ports(first)).intersection(_published_ports(second))
    if not shared_ports:
        return False
    return _addresses_overlap(first.host_ip, second.host_ip)


# ---------------------------------------------------------------------------
# Volumes
# ---------------------------------------------------------------------------

_VOLUME_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+", re.ASCII)
_PROPAGATIONS = ("rprivate", "private", "rshared", "shared", "rslave", "slave")
_SELINUX_LABELS = ("z", "Z")
_VOLUME_LONG_KEYS = frozenset({"type", "source", "target", "read_only", "bind", "volume", "consistency"})
BIND_OPTION_KEYS = frozenset({"propagation", "create_host_path", "selinux"})
VOLUME_OPTION_KEYS = frozenset({"nocopy", "subpath"})
_VOLUME_EXAMPLES = "for example app-data:/var/lib/app or /srv/config:/etc/app:ro"


def _reject_volume(spec: Any, reason: str) -> InvalidValue:
    message = f"volume: {spec!r} is not a valid volume mount: {reason} ({_VOLUME_EXAMPLES})."
    return InvalidValue("volume", spec, message)


@dataclass(frozen=True)
class VolumeMount:
    """A named volume or bind mount for one service.

    options contains the long syntax extras as sorted (key, value) pairs: propagation,
    create_host_path and selinux for "bind", nocopy and subpath for "volume", and consistency.
    """

    type: str
    source: str
    target: str
    read_only: bool = False
    options: tuple[tuple[str, Any], ...] = ()

    def to_compose(self) -> dict[str, Any]:
        """Render the long syntax dict for a Compose service's "volumes" list."""
        entry: dict[str, Any] = {"type": self.type, "source": self.source, "target": self.target}
        if self.read_only:
            entry["read_only"] = True
        bind_options = {key: value for key, value in self.options if key in BIND_OPTION_KEYS}
        volume_options = {key: value for key, value in self.options if key in VOLUME_OPTION_KEYS}
        if bind_options:
            entry["bind"] = bind_options
        if volume_options:
            entry["volume"] = volume_options
        for key, value in self.options:
            if key == "consistency":
                entry["consistency"] = value
        return entry

    def to_short(self) -> str:
        """Render SOURCE:TARGET[:MODE] for display and for matching a mount to remove.

        The short syntax has no place for create_host_path, nocopy, subpath or consistency,
        so those options are left out. Only mounts without them (except create_host_path
        true on a bind mount, which the short syntax implies) and without ':' in a path
        round-trip through parse_volume.
        """
        options = dict(self.options)
        modes = []
        if self.read_only:
            modes.append("ro")
        if "selinux" in options:
            modes.append(str(options["selinux"]))
        if "propagation" in options:
            modes.append(str(options["propagation"]))
        text = f"{self.source}:{self.target}"
        return f"{text}:{','.join(modes)}" if modes else text


def _normalize_absolute(path: str) -> str:
    # posixpath.normpath keeps a leading "//" as POSIX allows, but Linux treats it as "/".
    normalized = posixpath.normpath(path)
    if normalized.startswith("//"):
        normalized = "/" + normalized.lstrip("/")
    return normalized


def _check_target(spec: Any, target: Any) -> str:
    if not isinstance(target, str) or not target:
        raise _reject_volume(spec, "the container path (target) is missing")
    if _has_control_char(target) or _has_surrogate(target):
        raise _reject_volume(spec, f"the container path {target!r} contains a control character or invalid UTF-8")
    if not target.startswith("/"):
        raise _reject_volume(spec, f"the container path {target!r} must be absolute")
    normalized = _normalize_absolute(target)
    if normalized == "/":
        raise _reject_volume(spec, "mounting over the container's root directory '/' is not allowed")
    return normalized


def _check_source(spec: Any, source: Any, mount_type: str | None) -> tuple[str, str]:
    """Validate a source and return (type, source). The type is derived when mount_type is None."""
    if not isinstance(source, str) or not source:
        raise _reject_volume(
            spec, "anonymous volumes are not supported, so give a volume name or an absolute host path"
        )
    if _has_control_char(source) or _has_surrogate(source):
        raise _reject_volume(spec, f"the source {source!r} contains a control character or invalid UTF-8")

    if source.startswith("/"):
        if mount_type == "volume":
            raise _reject_volume(spec, f"the source {source!r} is a path, so use type bind or a volume name")
        return "bind", _normalize_absolute(source)
    if source.startswith((".", "~")):
        raise _reject_volume(
            spec, f"the host path {source!r} is relative, so use an absolute path such as /srv/app/data"
        )
    if mount_type == "bind":
        raise _reject_volume(
            spec, f"the bind source {source!r} must be an absolute host path such as /srv/app/data"
        )
    if not _VOLUME_NAME.fullmatch(source):
        raise _reject_volume(
            spec,
            f"the volume name {source!r} must be at least 2 characters of letters, digits, '_', '.' or '-' "
            f"and start with a letter or digit",
        )
    return "volume", source


def _parse_short_modes(spec: str, mode: str, mount_type: str) -> tuple[bool, tuple[tuple[str, Any], ...]]:
    """Parse the MODE part of the short syntax into (read_only, options)."""
    read_only = None
    options: dict[str, Any] = {}
    for flag in mode.split(","):
        if flag in ("ro", "rw"):
            if read_only is not None:
                raise _reject_volume(spec, "give only one of ro and rw")
            read_only = flag == "ro"
            continue
        if flag in _SELINUX_LABELS:
            key = "selinux"
        elif flag in _PROPAGATIONS:
            key = "propagation"
        else:
            raise _reject_volume(
                spec, f"the mode {flag!r} is not one of ro, rw, z, Z, {', '.join(_PROPAGATIONS)}"
            )
        if mount_type != "bind":
            raise _reject_volume(spec, f"the mode {flag!r} applies only to bind mounts of absolute host paths")
        if key in options:
            raise _reject_volume(spec, f"give only one {key} mode")
        options[key] = flag
    return bool(read_only), tuple(sorted(options.items()))


def _parse_short_volume(spec: str) -> VolumeMount:
    parts = spec.split(":")
    if len(parts) == 1:
        raise _reject_volume(spec, "anonymous volumes are not supported, so write SOURCE:TARGET")
    if len(parts) > 3:
        raise _reject_volume(spec, "write SOURCE:TARGET[:MODE] with no ':' inside the paths")

    mount_type, source = _check_source(spec, parts[0], None)
    target = _check_target(spec, parts[1])
    read_only, options = False, ()
    if len(parts) == 3:
        read_only, options = _parse_short_modes(spec, parts[2], mount_type)
    if mount_type == "bind":
        # Compose creates a missing host directory for a short-syntax bind mount but not
        # for a long-syntax one (`docker compose config` shows create_host_path: true).
        # The mount is rendered in long syntax, so the option is stored explicitly.
        options = tuple(sorted((*options, ("create_host_path", True))))
    return VolumeMount(type=mount_type, source=source, target=target, read_only=read_only, options=options)


def _check_option_group(spec: Any, group: str, value: Any, allowed: Iterable[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _reject_volume(spec, f"{group} must be a mapping")
    allowed_keys = sorted(allowed)
    unknown = sorted(str(key) for key in value if key not in allowed_keys)
    if unknown:
        raise _reject_volume(
            spec, f"unknown {group} keys {', '.join(unknown)}, because only {', '.join(allowed_keys)} are supported"
        )
    return value


def _parse_long_options(spec: dict[Any, Any], mount_type: str) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if "bind" in spec:
        if mount_type != "bind":
            raise _reject_volume(spec, "bind options apply only to type bind")
        bind = _check_option_group(spec, "bind", spec["bind"], BIND_OPTION_KEYS)
        if "propagation" in bind and bind["propagation"] not in _PROPAGATIONS:
            raise _reject_volume(spec, f"bind.propagation must be one of {', '.join(_PROPAGATIONS)}")
        if "create_host_path" in bind and not isinstance(bind["create_host_path"], bool):
            raise _reject_volume(spec, "bind.create_host_path must be true or false")
        if "selinux" in bind and bind["selinux"] not in _SELINUX_LABELS:
            raise _reject_volume(spec, "bind.selinux must be z or Z")
        options.update(bind)

    if "volume" in spec:
        if mount_type != "volume":
            raise _reject_volume(spec, "volume options apply only to type volume")
        volume = _check_option_group(spec, "volume", spec["volume"], VOLUME_OPTION_KEYS)
        if "nocopy" in volume and not isinstance(volume["nocopy"], bool):
            raise _reject_volume(spec, "volume.nocopy must be true or false")
        if "subpath" in volume:
            subpath = volume["subpath"]
            try:
                volume = {**volume, "subpath": validate_relative_path("volume.subpath", subpath)}
            except InvalidValue as error:
                reason = f"volume.subpath {subpath!r} must be a relative path inside the volume"
                raise _reject_volume(spec, reason) from error
        options.update(volume)

    if "consistency" in spec:
        consistency = spec["consistency"]
        if (
            not isinstance(consistency, str)
            or not consistency
            or _has_control_char(consistency)
            or _has_surrogate(consistency)
        ):
            raise _reject_volume(spec, "consistency must be a non-empty string such as cached or delegated")
        options["consistency"] = consistency
    return options


def _parse_long_volume(spec: dict[Any, Any]) -> VolumeMount:
    mount_type = spec.get("type")
    if mount_type in ("tmpfs", "npipe", "image", "cluster"):
        raise _reject_volume(spec, f"type {mount_type} is not supported, so use volume or bind")
    if mount_type not in ("volume", "bind"):
        raise _reject_volume(spec, "type must be volume or bind")
    unknown = sorted(str(key) for key in spec if key not in _VOLUME_LONG_KEYS)
    if unknown:
        raise _reject_volume(
            spec,
            f"unknown keys {', '.join(unknown)}, because only "
            f"{', '.join(sorted(_VOLUME_LONG_KEYS))} are supported",
        )

    _, source = _check_source(spec, spec.get("source"), mount_type)
    target = _check_target(spec, spec.get("target"))
    read_only = spec.get("read_only", False)
    if not isinstance(read_only, bool):
        raise _reject_volume(spec, "read_only must be true or false")
    options = _parse_long_options(spec, mount_type)
    return VolumeMount(
        type=mount_type, source=source, target=target, read_only=read_only, options=tuple(sorted(options.items()))
    )


def parse_volume(spec: str | dict[str, Any]) -> VolumeMount:
    """Parse a Compose volume mount in short syntax or as a long syntax dict.

    The short syntax is SOURCE:TARGET[:MODE]. An absolute SOURCE is a bind mount, any other
    SOURCE is a named volume, and MODE is a comma-separated list of ro, rw, z, Z and the
    propagation values. Relative host paths, anonymous volumes, tmpfs and npipe are
    rejected. Paths are returned normalized, without "." components or trailing '/'.
    """
    if isinstance(spec, dict):
        return _parse_long_volume(spec)
    if not isinstance(spec, str):
        raise _reject_volume(spec, f"expected a string or a mapping, got {type(spec).__name__}")
    if not spec:
        raise _reject_volume(spec, "the value is empty")
    return _parse_short_volume(spec)


# ---------------------------------------------------------------------------
# Environment variables
# ---------------------------------------------------------------------------

_ENV_KEY_MAX = 255


def _check_env_key(field: str, value: Any) -> str:
    _require_str(field, value, "DATABASE_URL")
    if not value:
        message = f"{field}: the variable name is empty. Give a name such as 'DATABASE_URL'."
        raise InvalidValue(field, value, message)
    if len(value) > _ENV_KEY_MAX:
        message = (
            f"{field}: the variable name {value[:20]!r}... has {len(value)} characters "
            f"and the maximum is {_ENV_KEY_MAX}. Shorten it."
        )
        raise InvalidValue(field, value, message)
    if "=" in value:
        message = (
            f"{field}: the variable name {value!r} contains '='. "
            f"Remove it, because '=' separates the name from the value."
        )
        raise InvalidValue(field, value, message)
    if "\0" in value:
        message = f"{field}: the variable name {value!r} contains a NUL character. Remove it."
        raise InvalidValue(field, value, message)
    if not value.strip("\n"):
        # Compose validates environment keys against the pattern ".+", and '.' does not
        # match a line feed, so `docker compose config` rejects a key made only of them.
        message = f"{field}: the variable name {value!r} contains only line feeds. Give a name such as 'DATABASE_URL'."
        raise InvalidValue(field, value, message)
    return value


# Linux rejects a process start with one environment string longer than
# 128 KiB (MAX_ARG_STRLEN, "argument list too long"). Half of that leaves
# room for the key and is still far above a certificate chain or a key.
ENV_VALUE_MAX_BYTES = 64 * 1024


def _check_env_value(field: str, value: Any) -> str:
    # Variable values are often secrets, so these messages never include the value.
    if not isinstance(value, str):
        message = f"{field}: the variable value must be a string, got {type(value).__name__}."
        raise InvalidValue(field, value, message)
    if _has_surrogate(value):
        raise InvalidValue(
            field,
            value,
            f"{field}: the variable value is not valid UTF-8 text. Pass it as UTF-8, "
            f"for example from a file with --value-file.",
        )
    position = value.find("\0")
    if position != -1:
        raise InvalidValue(
            field,
            value,
            f"{field}: the variable value contains a NUL character at position {position}, "
            f"which Docker cannot pass to a container. Remove it.",
        )
    size = len(value.encode("utf-8"))
    if size > ENV_VALUE_MAX_BYTES:
        raise InvalidValue(
            field,
            value,
            f"{field}: the variable value is {size} bytes; the limit is {ENV_VALUE_MAX_BYTES} bytes. "
            "Mount larger data as a file with --volume instead.",
        )
    return value


def validate_env_key(value: str) -> str:
    """Validate a variable name and return it.

    The name must be 1 to 255 characters without '=' or NUL. Docker accepts any other
    character, including '.', ':' and spaces, so those are allowed.
    """
    return _check_env_key("key", value)


def validate_env_value(value: str) -> str:
    """Validate a variable value and return it unchanged, without trimming.

    Any string is accepted except one containing NUL, which the process environment cannot carry.
    """
    return _check_env_value("value", value)


def escape_env_value(value: str) -> str:
    """Return the value with each '$' doubled so Compose interpolation keeps it literal."""
    return value.replace("$", "$$")


def parse_env_assignment(field: str, text: str) -> tuple[str, str]:
    """Split "KEY=VALUE" at the first '=' and validate both parts. field is the flag name for messages.

    The value may itself contain '='. Messages never include the text, because a
    mistyped assignment may be a bare secret.
    """
    if isinstance(text, str) and _has_surrogate(text):
        raise InvalidValue(
            field, text, f"{field}: the assignment is not valid UTF-8 text. Pass it as UTF-8, for example by "
            f"setting a UTF-8 locale such as LANG=C.UTF-8 in the shell."
        )
    _require_str(field, text, "KEY=VALUE")
    key, equals, value = text.partition("=")
    if not equals:
        raise InvalidValue(
            field, text, f"{field}: the assignment has no '='. Write it as KEY=VALUE, for example {field} DEBUG=1."
        )
    return _check_env_key(field, key), _check_env_value(field, value)


# ---------------------------------------------------------------------------
# Compose documents and project names
# ---------------------------------------------------------------------------

_COMPOSE_SERVICE_NAME = re.compile(r"[a-zA-Z0-9._-]+", re.ASCII)


def _load_yaml(text: str, source: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = error.problem or error.context or "syntax error"
        message = f"{source}: invalid YAML{where}: {problem}. Fix the syntax and try again."
        raise InvalidValue(source, text, message) from error
    except yaml.YAMLError as error:
        message = f"{source}: invalid YAML: {error}. Fix the syntax and try again."
        raise InvalidValue(source, text, message) from error
    except ValueError as error:
        # PyYAML raises ValueError for scalars that match a tag's pattern but cannot be
        # built, such as the date 2024-02-30, or an int longer than Python's 4300-digit limit.
        raise InvalidValue(
            source, text, f"{source}: a value cannot be loaded ({error}). Quote the value or fix it."
        ) from error
    except RecursionError as error:
        # PyYAML's parser and composer recurse once per nesting level.
        raise InvalidValue(
            source, text, f"{source}: the YAML is nested too deeply to load. Flatten the nested lists or mappings."
        ) from error


def parse_compose_document(text: str, source: str = "compose file") -> dict[str, Any]:
    """Parse Compose YAML and check it has a "services" mapping with at least one service.

    Service names must match [a-zA-Z0-9._-]+ and each service must be a mapping. The rest
    of the document is returned as parsed, without further checks.
    """
    _require_str(source, text, "services: {web: {image: nginx}}")
    document = _load_yaml(text, source)
    if document is None:
        raise InvalidValue(source, text, f"{source}: the document is empty. Add a top-level 'services' mapping.")
    if not isinstance(document, dict):
        message = (
            f"{source}: the document must be a mapping with a top-level 'services' key, "
            f"got {type(document).__name__}."
        )
        raise InvalidValue(source, text, message)
    services = document.get("services")
    if not isinstance(services, dict) or not services:
        message = (
            f"{source}: the 'services' key must be a mapping with at least one service. "
            f"Add a service, for example 'web: {{image: nginx}}'."
        )
        raise InvalidValue(source, text, message)

    for name, service in services.items():
        if not isinstance(name, str) or not _COMPOSE_SERVICE_NAME.fullmatch(name):
            message = (
                f"{source}: the service name {name!r} may contain only letters, digits, '.', '_' and '-'. "
                f"Rename the service."
            )
            raise InvalidValue(source, text, message)
        if not isinstance(service, dict):
            message = f"{source}: the service {name!r} must be a mapping of settings such as 'image: nginx'."
            raise InvalidValue(source, text, message)
    return document


def validate_compose_service(field: str, value: str) -> str:
    """Validate the name of a service inside a compose stack and return it.

    Compose allows letters, digits, '.', '_' and '-'. An empty name is returned as it
    is and means the first service of the stack.
    """
    _require_str(field, value, "web")
    if value and not _COMPOSE_SERVICE_NAME.fullmatch(value):
        raise InvalidValue(
            field,
            value,
            f"{field}: {value!r} is not a Compose service name. Use letters, digits, '.', '_' and '-', "
            f"as in the 'services' mapping of the compose file.",
        )
    return value


def load_mapping_argument(field: str, text: str) -> Any:
    """Load a long-syntax port or volume given as text, such as "{target: 80, published: 8080}".

    Text that does not start with '{' is returned unchanged for the short-syntax parsers.
    """
    if not isinstance(text, str) or not text.lstrip().startswith("{"):
        return text
    value = _load_yaml(text, field)
    if not isinstance(value, dict):
        raise InvalidValue(field, text, f"{field}: {text!r} is not a mapping. Write it as {{key: value, ...}}.")
    return value


_PROJECT_NAME_MAX = 63
_PROJECT_HASH_LENGTH = 8


def _project_name_part(part: str) -> str:
    cleaned = re.sub(r"[^a-z0-9-]", "-", part.lower())
    return re.sub(r"-{2,}", "-", cleaned).strip("-")


def compose_project_name(project: str, environment: str, service: str) -> str:
    """Build the `docker compose -p` name for one service of one environment.

    Compose project names allow only lowercase letters, digits, '_' and '-' and must start
    with a letter or digit. The parts are joined with '_', which DNS-label names never
    contain, so ("a-b", "c", "web") and ("a", "b-c", "web") stay apart. Other characters
    become '-'. A name longer than 63 characters is cut and gets "-" plus 8 hex digits of
    the full name's sha256, so different long names stay different.
    """
    parts = [_project_name_part(part) for part in (project, environment, service)]
    joined = "_".join(part for part in parts if part)
    name = joined.lstrip("-_")
    if not name:
        raise InvalidValue(
            "project",
            (project, environment, service),
            f"project: {project!r}/{environment!r}/{service!r} gives an empty Compose project name. "
            "Use names with letters or digits.",
        )
    if len(name) <= _PROJECT_NAME_MAX:
        return name

    digest = hashlib.sha256(name.encode()).hexdigest()[:_PROJECT_HASH_LENGTH]
    prefix = name[: _PROJECT_NAME_MAX - _PROJECT_HASH_LENGTH - 1].rstrip("-_")
    return f"{prefix}-{digest}"
