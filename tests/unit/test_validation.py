"""Tables of accepted and rejected inputs for services.validation.

These tests import no Django code and touch no database, so they run with -p no:django.
"""

import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.validation import (
    InvalidValue,
    PortMapping,
    VolumeMount,
    compose_project_name,
    escape_env_value,
    parse_compose_document,
    parse_env_assignment,
    parse_port,
    parse_volume,
    port_key,
    ports_conflict,
    validate_branch,
    validate_env_key,
    validate_env_value,
    validate_image_reference,
    validate_name,
    validate_relative_path,
    validate_repository_url,
)

DIGEST = "sha256:" + "0123456789abcdef" * 4
# Short-syntax bind mounts create a missing host path, as `docker compose config` shows.
CREATE = (("create_host_path", True),)


# ---------------------------------------------------------------------------
# InvalidValue
# ---------------------------------------------------------------------------


def test_invalid_value_attributes():
    error = InvalidValue("image", "Nginx", "image: 'Nginx' is wrong.")

    assert error.field == "image"
    assert error.value == "Nginx"
    assert error.message == "image: 'Nginx' is wrong."
    assert str(error) == "image: 'Nginx' is wrong."
    assert isinstance(error, ValueError)


def test_invalid_value_survives_pickle():
    error = pickle.loads(pickle.dumps(InvalidValue("port", "x", "port: 'x' is wrong.")))

    assert error.field == "port"
    assert error.value == "x"
    assert str(error) == "port: 'x' is wrong."


# ---------------------------------------------------------------------------
# Names
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["a", "web", "my-app", "api2", "0", "a" * 63, "a-b-c", "x1-y2"])
def test_validate_name_accepts(name):
    assert validate_name("service", name) == name


@pytest.mark.parametrize(
    "name, reason",
    [
        ("", "empty"),
        ("a" * 64, "maximum is 63"),
        ("Web", "lowercase"),
        ("-web", "start and end"),
        ("web-", "start and end"),
        ("my_app", "only lowercase"),
        ("my.app", "only lowercase"),
        ("my app", "only lowercase"),
        ("wéb", "only lowercase"),
        ("web\n", "only lowercase"),
    ],
)
def test_validate_name_rejects(name, reason):
    with pytest.raises(InvalidValue) as caught:
        validate_name("service", name)

    assert caught.value.field == "service"
    assert caught.value.value == name
    assert str(caught.value).startswith(f"service: {name!r}")
    assert reason in str(caught.value)


def test_validate_name_rejects_non_string():
    with pytest.raises(InvalidValue, match="expected a string"):
        validate_name("project", 5)


# ---------------------------------------------------------------------------
# Image references
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "image",
    [
        "nginx",
        "nginx:1.27",
        "library/nginx:latest",
        "localhost:5000/team/api:1.4",
        "localhost/api",
        "registry.example.com/team/api",
        "registry.example.com:5000/team/sub/api:1.4-rc.1",
        "Registry.Example.COM/api",
        "ghcr.io/org/my_app__x.y-z:v1",
        f"api@{DIGEST}",
        f"api:1.4@{DIGEST}",
        f"registry.example.com:5000/api@{DIGEST}",
        "[::1]:5000/api:1",
        "192.168.1.10:5000/api",
        "a--b/c",
        "api:" + "t" * 128,
        "api:_underscore",
        "localhost:5000",
        "r.io/" + "a" * 250,
    ],
)
def test_validate_image_reference_accepts(image):
    assert validate_image_reference(image) == image


@pytest.mark.parametrize(
    "image, reason",
    [
        ("", "empty"),
        ("Nginx:latest", "repository names must be lowercase"),
        ("team/API", "repository names must be lowercase"),
        ("nginx:", "the tag ''"),
        ("nginx:-1", "the tag '-1'"),
        ("nginx:.1", "the tag '.1'"),
        ("nginx:" + "t" * 129, "the tag"),
        ("nginx:1.27 ", "without spaces"),
        ("nginx\t", "without spaces"),
        ("ngïnx", "ASCII"),
        ("api@sha256:abc", "64 lowercase hex"),
        ("api@sha256:" + "A" * 64, "64 lowercase hex"),
        ("api@md5:" + "a" * 32, "the digest"),
        ("api@", "the digest"),
        ("team//api", "empty component"),
        ("/api", "empty component"),
        ("api/", "empty component"),
        ("a_-b", "path component 'a_-b'"),
        ("-api", "path component '-api'"),
        ("api.", "path component 'api.'"),
        ("a___b", "path component"),
        ("registry..io/api", "registry host"),
        ("-registry.io/api", "registry host"),
        ("registry.io:0/api", "registry port"),
        ("registry.io:99999/api", "registry port"),
        ("registry.io:abc/api", "registry port"),
        ("[::1/api", "closing"),
        ("[zz]:5000/api", "IPv6"),
        ("https://registry.io/api", "URL scheme"),
        ("@" + DIGEST, "repository name is missing"),
        (":1.4", "repository name is missing"),
        ("r.io/" + "a" * 251, "maximum is 255"),
    ],
)
def test_validate_image_reference_rejects(image, reason):
    with pytest.raises(InvalidValue) as caught:
        validate_image_reference(image)

    message = str(caught.value)
    assert caught.value.field == "image"
    assert message.startswith(f"image: {image!r} is not a valid image reference")
    assert reason in message
    assert "for example nginx:1.27" in message


def test_image_lowercase_message_is_exact():
    with pytest.raises(InvalidValue) as caught:
        validate_image_reference("Nginx:latest")

    assert str(caught.value) == (
        "image: 'Nginx:latest' is not a valid image reference: repository names must be lowercase "
        "(for example nginx:1.27 or registry.example.com:5000/team/api:1.4)."
    )


# ---------------------------------------------------------------------------
# Repository URLs
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://github.com/team/app.git",
        "https://github.com/team/app",
        "HTTPS://github.com/team/app.git",
        "https://git.example.com:8443/team/app.git",
        "https://user:token@git.example.com/team/app.git",
        "https://[::1]/repo.git",
        "ssh://git@github.com/team/app.git",
        "ssh://git@git.example.com:2222/team/app.git",
        "ssh://github.com/team/app.git",
        "git@github.com:team/app.git",
        "deploy@10.0.0.5:/srv/git/app.git",
        "git@[::1]:team/app.git",
        "file:///srv/git/app.git",
    ],
)
def test_validate_repository_url_accepts(url):
    assert validate_repository_url(url) == url


@pytest.mark.parametrize(
    "url, reason",
    [
        ("", "empty"),
        ("http://github.com/team/app.git", "use https://"),
        ("git://github.com/team/app.git", "unauthenticated"),
        ("ftp://example.com/app.git", "scheme 'ftp'"),
        ("ext::sh -c touch% /tmp/pwned", "remote-helper"),
        ("fd::17", "remote-helper"),
        ("-uhttps://github.com/x", "must not start with '-'"),
        ("--upload-pack=touch /tmp/x", "must not start with '-'"),
        ("https://github.com/team/app .git", "spaces"),
        ("https://github.com/team/app.git\n", "control characters"),
        ("https://github.com/a\x00", "control characters"),
        ("https:///team/app.git", "host is empty"),
        ("https://github.com", "path is missing"),
        ("https://github.com/", "path is missing"),
        ("https://github.com:0/x", "1 to 65535"),
        ("https://github.com:99999/x", "cannot be parsed"),
        ("https://[::1/x", "cannot be parsed"),
        ("https://-evil.com/x", "host must not start with '-'"),
        ("ssh://-oProxyCommand=touch/x", "host must not start with '-'"),
        ("ssh://-u@host/x", "user must not start with '-'"),
        ("ssh://git@/team/app.git", "host is empty"),
        ("ssh://git@host", "path is missing"),
        ("git@:team/app.git", "host is empty"),
        ("git@host:", "path is missing"),
        ("git@host:-oProxyCommand", "path must not start with '-'"),
        ("-git@host:x", "must not start with '-'"),
        ("github.com:team/app.git", "neither a URL"),
        ("/srv/git/app.git", "neither a URL"),
        ("file://host/srv/app.git", "empty host"),
        ("file:///", "path is missing"),
    ],
)
def test_validate_repository_url_rejects(url, reason):
    with pytest.raises(InvalidValue) as caught:
        validate_repository_url(url)

    assert caught.value.field == "repository_url"
    assert caught.value.value == url
    assert reason in str(caught.value)


def test_repository_url_message_hides_password():
    url = "https://deploy:s3cret-token@github.com"

    with pytest.raises(InvalidValue) as caught:
        validate_repository_url(url)

    assert "s3cret-token" not in str(caught.value)
    assert "https://deploy:***@github.com" in str(caught.value)


# ---------------------------------------------------------------------------
# Relative paths
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path, normalized",
    [
        ("compose.yaml", "compose.yaml"),
        ("./deploy//compose.yaml", "deploy/compose.yaml"),
        ("deploy/./compose.yml", "deploy/compose.yml"),
        ("deploy/../compose.yaml", "compose.yaml"),
        ("docker/Dockerfile", "docker/Dockerfile"),
        ("a/b/c/", "a/b/c"),
        ("dir with space/Dockerfile", "dir with space/Dockerfile"),
        ("..hidden/file", "..hidden/file"),
        ("x/-file", "x/-file"),
        ("Dockerfile.prod", "Dockerfile.prod"),
    ],
)
def test_validate_relative_path_accepts(path, normalized):
    assert validate_relative_path("compose_path", path) == normalized


@pytest.mark.parametrize(
    "path, reason",
    [
        ("", "empty"),
        ("/etc/passwd", "absolute"),
        ("//srv/compose.yaml", "absolute"),
        ("..", "outside the repository"),
        ("../compose.yaml", "outside the repository"),
        ("deploy/../../compose.yaml", "outside the repository"),
        ("./", "repository root"),
        (".", "repository root"),
        ("a/..", "repository root"),
        ("compose\x00.yaml", "control character"),
        ("compose.yaml\n", "control character"),
        ("-f", "starts with '-'"),
        ("./-f", "starts with '-'"),
    ],
)
def test_validate_relative_path_rejects(path, reason):
    with pytest.raises(InvalidValue) as caught:
        validate_relative_path("dockerfile_path", path)

    assert caught.value.field == "dockerfile_path"
    assert str(caught.value).startswith("dockerfile_path: ")
    assert reason in str(caught.value)


# ---------------------------------------------------------------------------
# Branches
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "branch",
    ["main", "release/1.4", "feature/new-ui", "v1.2.3", "a.b", "fix_123", "user@host", "ü-branch", "a/b/c"],
)
def test_validate_branch_accepts(branch):
    assert validate_branch(branch) == branch


@pytest.mark.parametrize(
    "branch, reason",
    [
        ("", "empty"),
        ("my branch", "' '"),
        ("a~1", "'~'"),
        ("a^2", "'^'"),
        ("a:b", "':'"),
        ("a?", "'?'"),
        ("a*", "'*'"),
        ("a[0]", "'['"),
        ("a\\b", "'\\\\'"),
        ("a..b", "'..'"),
        ("-main", "starts with '-'"),
        ("main.lock", "ends with '.lock'"),
        ("main.lock/x", "ends with '.lock'"),
        ("main/", "empty path component"),
        ("/main", "empty path component"),
        ("a//b", "empty path component"),
        ("main.", "ends with '.'"),
        (".hidden", "starts with '.'"),
        ("a/.b", "starts with '.'"),
        ("a@{1}", "'@{'"),
        ("@", "'@' alone"),
        ("a\tb", "control character"),
        ("a\x7fb", "control character"),
    ],
)
def test_validate_branch_rejects(branch, reason):
    with pytest.raises(InvalidValue) as caught:
        validate_branch(branch)

    assert caught.value.field == "branch"
    assert reason in str(caught.value)


# ---------------------------------------------------------------------------
# Ports
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("80", PortMapping(target="80")),
        (80, PortMapping(target="80")),
        ("8080:80", PortMapping(target="80", published="8080")),
        ("8080:80/tcp", PortMapping(target="80", published="8080")),
        ("8080:80/TCP", PortMapping(target="80", published="8080")),
        ("127.0.0.1:5353:53/udp", PortMapping(target="53", published="5353", host_ip="127.0.0.1", protocol="udp")),
        ("[::1]:8080:80", PortMapping(target="80", published="8080", host_ip="::1")),
        ("[0:0:0:0:0:0:0:1]:8080:80", PortMapping(target="80", published="8080", host_ip="::1")),
        ("[::]:443:443", PortMapping(target="443", published="443", host_ip="::")),
        ("8000-8001:80-81", PortMapping(target="80-81", published="8000-8001")),
        ("9000-9002", PortMapping(target="9000-9002")),
        ("127.0.0.1::80", PortMapping(target="80", host_ip="127.0.0.1")),
        ("[::1]::80", PortMapping(target="80", host_ip="::1")),
        ("0.0.0.0:1:65535", PortMapping(target="65535", published="1", host_ip="0.0.0.0")),
        ("80-80", PortMapping(target="80")),
        ("08080:080", PortMapping(target="80", published="8080")),
        (
            "127.0.0.1:8000-8001:80-81/udp",
            PortMapping(target="80-81", published="8000-8001", host_ip="127.0.0.1", protocol="udp"),
        ),
        ({"target": 80}, PortMapping(target="80")),
        ({"target": "80", "published": 8080}, PortMapping(target="80", published="8080")),
        (
            {"target": 53, "published": "5353", "host_ip": "127.0.0.1", "protocol": "UDP"},
            PortMapping(target="53", published="5353", host_ip="127.0.0.1", protocol="udp"),
        ),
        ({"target": 80, "published": "8000-8000"}, PortMapping(target="80", published="8000")),
        ({"target": 80, "host_ip": "[::1]"}, PortMapping(target="80", host_ip="::1")),
        ({"target": 80, "published": None, "host_ip": None}, PortMapping(target="80")),
    ],
)
def test_parse_port_accepts(spec, expected):
    assert parse_port(spec) == expected


@pytest.mark.parametrize(
    "spec, reason",
    [
        ("", "empty"),
        ("0", "outside 1-65535"),
        ("65536", "outside 1-65535"),
        ("8080:0", "outside 1-65535"),
        ("123456", "must be a number or a range"),
        ("http", "must be a number or a range"),
        ("80/sctp", "must be tcp or udp"),
        ("80/", "protocol after '/' is empty"),
        ("8000-8001:80", "same length"),
        ("8000:80-81", "same length"),
        ("8000-8002:80-81", "same length"),
        ("81-80", "ends before it starts"),
        (":80", "published port before ':' is empty"),
        (":8080:80", "host IP before the first ':' is empty"),
        ("8080:", "container port is missing"),
        ("localhost:8080:80", "not a valid IPv4 or IPv6 address"),
        ("300.0.0.1:8080:80", "not a valid IPv4 or IPv6 address"),
        ("::1:8080:80", "must be in brackets"),
        ("[127.0.0.1]:8080:80", "only for IPv6"),
        ("[::1]:80", "[ADDRESS]:PUBLISHED:TARGET"),
        ("[::1", "[ADDRESS]:PUBLISHED:TARGET"),
        ("[fe80::1%eth0]:80:80", "zone index"),
        ("[::g]:80:80", "not a valid IPv4 or IPv6 address"),
        ("8080 :80", "spaces"),
        ("8080:80\n", "spaces"),
        ("٨٠", "must be a number or a range"),
        (True, "expected a string or a mapping"),
        (None, "expected a string or a mapping"),
        ({"published": 80}, "target key is missing"),
        ({"target": 80, "mode": "host"}, "unknown keys mode"),
        ({"target": "80-81"}, "short syntax"),
        ({"target": True}, "target must be a port number"),
        ({"target": -1}, "must be a number or a range"),
        ({"target": 70000}, "outside 1-65535"),
        ({"target": 80, "published": [80]}, "published must be"),
        ({"target": 80, "published": "8000-8001"}, "same length"),
        ({"target": 80, "host_ip": 1}, "host_ip must be a string"),
        ({"target": 80, "protocol": "icmp"}, "must be tcp or udp"),
    ],
)
def test_parse_port_rejects(spec, reason):
    with pytest.raises(InvalidValue) as caught:
        parse_port(spec)

    message = str(caught.value)
    assert caught.value.field == "port"
    assert message.startswith(f"port: {spec!r} is not a valid port mapping")
    assert reason in message


@pytest.mark.parametrize(
    "spec",
    [
        "80",
        "8080:80",
        "127.0.0.1:5353:53/udp",
        "[::1]:8080:80",
        "[::1]::80",
        "127.0.0.1::80/udp",
        "8000-8001:80-81",
        "127.0.0.1:8000-8001:80-81/udp",
        "[2001:db8::1]:9000-9001:9000-9001",
    ],
)
def test_port_short_round_trip(spec):
    mapping = parse_port(spec)

    assert mapping.to_short() == spec
    assert parse_port(mapping.to_short()) == mapping


@pytest.mark.parametrize(
    "spec, compose",
    [
        ("80", {"target": 80, "protocol": "tcp"}),
        ("8080:80", {"target": 80, "published": "8080", "protocol": "tcp"}),
        (
            "127.0.0.1:5353:53/udp",
            {"target": 53, "published": "5353", "host_ip": "127.0.0.1", "protocol": "udp"},
        ),
        ("[::1]:8080:80", {"target": 80, "published": "8080", "host_ip": "::1", "protocol": "tcp"}),
        ("8000-8001:80-81", "8000-8001:80-81"),
        ("127.0.0.1:8000-8001:80-81/udp", "127.0.0.1:8000-8001:80-81/udp"),
        ("[::1]:8000-8001:80-81", "[::1]:8000-8001:80-81"),
        ("9000-9001", "9000-9001"),
    ],
)
def test_port_to_compose(spec, compose):
    assert parse_port(spec).to_compose() == compose


@pytest.mark.parametrize(
    "spec",
    ["80", "8080:80", "127.0.0.1:5353:53/udp", "[::1]:8080:80", "127.0.0.1::80", "8000-8001:80-81"],
)
def test_port_to_compose_parses_back(spec):
    mapping = parse_port(spec)

    assert parse_port(mapping.to_compose()) == mapping


@pytest.mark.parametrize(
    "spec, keys",
    [
        ("80", []),
        ("127.0.0.1::80", []),
        ("8080:80", [("0.0.0.0", 8080, "tcp")]),
        ("127.0.0.1:5353:53/udp", [("127.0.0.1", 5353, "udp")]),
        ("[::1]:8080:80", [("::1", 8080, "tcp")]),
        ("8000-8002:80-82", [("0.0.0.0", 8000, "tcp"), ("0.0.0.0", 8001, "tcp"), ("0.0.0.0", 8002, "tcp")]),
    ],
)
def test_port_key(spec, keys):
    assert port_key(parse_port(spec)) == keys


@pytest.mark.parametrize(
    "first, second, conflict",
    [
        ("8080:80", "8080:81", True),
        ("8080:80", "8081:80", False),
        ("8080:80", "8080:80/udp", False),
        ("8080:80/udp", "8080:81/udp", True),
        ("127.0.0.1:8080:80", "127.0.0.1:8080:81", True),
        ("127.0.0.1:8080:80", "127.0.0.2:8080:80", False),
        ("0.0.0.0:8080:80", "127.0.0.1:8080:80", True),
        ("8080:80", "127.0.0.1:8080:80", True),
        ("8080:80", "[::1]:8080:80", True),
        ("0.0.0.0:8080:80", "[::1]:8080:80", False),
        ("[::]:8080:80", "[::1]:8080:80", True),
        ("[::]:8080:80", "127.0.0.1:8080:80", False),
        ("[::1]:8080:80", "[::2]:8080:80", False),
        ("8000-8002:80-82", "8002:90", True),
        ("8000-8002:80-82", "8003-8004:80-81", False),
        ("80", "80", False),
        ("80", "8080:80", False),
    ],
)
def test_ports_conflict(first, second, conflict):
    a = parse_port(first)
    b = parse_port(second)

    assert ports_conflict(a, b) is conflict
    assert ports_conflict(b, a) is conflict


# ---------------------------------------------------------------------------
# Volumes
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("data:/var/lib/app", VolumeMount(type="volume", source="data", target="/var/lib/app")),
        ("db_data.v2-x:/data", VolumeMount(type="volume", source="db_data.v2-x", target="/data")),
        ("data:/data:ro", VolumeMount(type="volume", source="data", target="/data", read_only=True)),
        ("data:/data:rw", VolumeMount(type="volume", source="data", target="/data")),
        ("/srv/config:/etc/app", VolumeMount(type="bind", source="/srv/config", target="/etc/app", options=CREATE)),
        ("/srv/config/:/etc/app/", VolumeMount(type="bind", source="/srv/config", target="/etc/app", options=CREATE)),
        ("//srv//config:/etc/./app", VolumeMount(type="bind", source="/srv/config", target="/etc/app", options=CREATE)),
        ("/:/host:ro", VolumeMount(type="bind", source="/", target="/host", read_only=True, options=CREATE)),
        (
            "/srv/a:/a:ro,z",
            VolumeMount(type="bind", source="/srv/a", target="/a", read_only=True, options=(*CREATE, ("selinux", "z"))),
        ),
        (
            "/srv/a:/a:Z,rshared",
            VolumeMount(
                type="bind", source="/srv/a", target="/a",
                options=(*CREATE, ("propagation", "rshared"), ("selinux", "Z")),
            ),
        ),
        (
            "/srv/a:/a:slave",
            VolumeMount(type="bind", source="/srv/a", target="/a", options=(*CREATE, ("propagation", "slave"))),
        ),
        ({"type": "volume", "source": "data", "target": "/data"}, VolumeMount("volume", "data", "/data")),
        (
            {"type": "bind", "source": "/srv", "target": "/srv", "read_only": True},
            VolumeMount("bind", "/srv", "/srv", read_only=True),
        ),
        (
            {
                "type": "bind",
                "source": "/srv",
                "target": "/mnt",
                "bind": {"propagation": "rprivate", "create_host_path": False, "selinux": "z"},
            },
            VolumeMount(
                "bind",
                "/srv",
                "/mnt",
                options=(("create_host_path", False), ("propagation", "rprivate"), ("selinux", "z")),
            ),
        ),
        (
            {"type": "volume", "source": "data", "target": "/d", "volume": {"nocopy": True, "subpath": "./a//b"}},
            VolumeMount("volume", "data", "/d", options=(("nocopy", True), ("subpath", "a/b"))),
        ),
        (
            {"type": "bind", "source": "/srv", "target": "/srv", "consistency": "cached"},
            VolumeMount("bind", "/srv", "/srv", options=(("consistency", "cached"),)),
        ),
    ],
)
def test_parse_volume_accepts(spec, expected):
    assert parse_volume(spec) == expected


@pytest.mark.parametrize(
    "spec, reason",
    [
        ("", "empty"),
        ("/data", "anonymous volumes"),
        ("data", "anonymous volumes"),
        (":/data", "anonymous volumes"),
        ("./data:/data", "use an absolute path"),
        ("../data:/data", "use an absolute path"),
        ("~/data:/data", "use an absolute path"),
        ("x:/data", "at least 2 characters"),
        ("_data:/data", "start with a letter or digit"),
        ("my data:/data", "volume name"),
        ("${DATA}:/data", "volume name"),
        ("data:relative", "must be absolute"),
        ("data:", "target) is missing"),
        ("data:/", "root directory"),
        ("data:/a/..", "root directory"),
        ("data:/data:rx", "the mode 'rx'"),
        ("data:/data:ro,rw", "only one of ro and rw"),
        ("data:/data:", "the mode ''"),
        ("data:/data:z", "only to bind mounts"),
        ("data:/data:shared", "only to bind mounts"),
        ("/srv:/srv:z,Z", "only one selinux"),
        ("/srv:/srv:shared,slave", "only one propagation"),
        ("/srv:/srv:ro:z", "no ':' inside the paths"),
        ("C:\\data:/data", "volume name 'C'"),
        ("/srv\n:/srv", "control character"),
        ("data:/da\x00ta", "control character"),
        (5, "expected a string or a mapping"),
        ({"type": "tmpfs", "target": "/tmp"}, "type tmpfs is not supported"),
        ({"type": "npipe", "source": "x", "target": "/x"}, "type npipe is not supported"),
        ({"source": "data", "target": "/data"}, "type must be volume or bind"),
        ({"type": "volume", "target": "/data"}, "anonymous volumes"),
        ({"type": "volume", "source": "data"}, "target) is missing"),
        ({"type": "volume", "source": "data", "target": "/d", "tmpfs": {}}, "unknown keys tmpfs"),
        ({"type": "volume", "source": "data", "target": "/d", "labels": {}}, "unknown keys labels"),
        ({"type": "volume", "source": "/srv", "target": "/d"}, "use type bind"),
        ({"type": "bind", "source": "data", "target": "/d"}, "absolute host path"),
        ({"type": "bind", "source": "./data", "target": "/d"}, "use an absolute path"),
        ({"type": "volume", "source": "data", "target": "/d", "read_only": "yes"}, "read_only must be true or false"),
        ({"type": "volume", "source": "data", "target": "/d", "bind": {}}, "only to type bind"),
        ({"type": "bind", "source": "/s", "target": "/d", "volume": {}}, "only to type volume"),
        ({"type": "bind", "source": "/s", "target": "/d", "bind": "rshared"}, "bind must be a mapping"),
        ({"type": "bind", "source": "/s", "target": "/d", "bind": {"propagation": "up"}}, "bind.propagation"),
        ({"type": "bind", "source": "/s", "target": "/d", "bind": {"selinux": "x"}}, "bind.selinux"),
        ({"type": "bind", "source": "/s", "target": "/d", "bind": {"create_host_path": 1}}, "create_host_path"),
        ({"type": "bind", "source": "/s", "target": "/d", "bind": {"recursive": "enabled"}}, "unknown bind keys"),
        ({"type": "volume", "source": "db", "target": "/d", "volume": {"nocopy": "true"}}, "volume.nocopy"),
        ({"type": "volume", "source": "db", "target": "/d", "volume": {"subpath": "../x"}}, "volume.subpath"),
        ({"type": "volume", "source": "db", "target": "/d", "consistency": ""}, "consistency"),
    ],
)
def test_parse_volume_rejects(spec, reason):
    with pytest.raises(InvalidValue) as caught:
        parse_volume(spec)

    message = str(caught.value)
    assert caught.value.field == "volume"
    assert message.startswith(f"volume: {spec!r} is not a valid volume mount")
    assert reason in message


@pytest.mark.parametrize(
    "spec",
    [
        "data:/var/lib/app",
        "data:/data:ro",
        "/srv/config:/etc/app",
        "/srv/a:/a:ro,z",
        "/srv/a:/a:Z,rshared",
        "/srv/a:/a:ro,z,rslave",
    ],
)
def test_volume_short_round_trip(spec):
    mount = parse_volume(spec)

    assert mount.to_short() == spec
    assert parse_volume(mount.to_short()) == mount


@pytest.mark.parametrize(
    "spec, compose",
    [
        ("data:/data", {"type": "volume", "source": "data", "target": "/data"}),
        ("data:/data:ro", {"type": "volume", "source": "data", "target": "/data", "read_only": True}),
        (
            "/srv/a:/a:ro,Z,private",
            {
                "type": "bind",
                "source": "/srv/a",
                "target": "/a",
                "read_only": True,
                "bind": {"create_host_path": True, "propagation": "private", "selinux": "Z"},
            },
        ),
        (
            {
                "type": "volume",
                "source": "db",
                "target": "/d",
                "volume": {"nocopy": True, "subpath": "x"},
                "consistency": "delegated",
            },
            {
                "type": "volume",
                "source": "db",
                "target": "/d",
                "volume": {"nocopy": True, "subpath": "x"},
                "consistency": "delegated",
            },
        ),
    ],
)
def test_volume_to_compose(spec, compose):
    mount = parse_volume(spec)

    assert mount.to_compose() == compose
    assert parse_volume(mount.to_compose()) == mount


# ---------------------------------------------------------------------------
# Environment variables
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["A", "DATABASE_URL", "a.b", "A:B", "with space", "ü", "1ABC", "K" * 255])
def test_validate_env_key_accepts(key):
    assert validate_env_key(key) == key


@pytest.mark.parametrize(
    "key, reason",
    [("", "empty"), ("A=B", "contains '='"), ("=", "contains '='"), ("A\x00", "NUL"), ("K" * 256, "maximum is 255")],
)
def test_validate_env_key_rejects(key, reason):
    with pytest.raises(InvalidValue) as caught:
        validate_env_key(key)

    assert caught.value.field == "key"
    assert reason in str(caught.value)


@pytest.mark.parametrize("value", ["", " padded ", "a=b=c", "$HOME", "line1\nline2", "ü", "\t"])
def test_validate_env_value_accepts(value):
    assert validate_env_value(value) == value


def test_env_value_message_hides_value():
    with pytest.raises(InvalidValue) as caught:
        validate_env_value("secret\x00tail")

    assert "secret" not in str(caught.value)
    assert "position 6" in str(caught.value)


@pytest.mark.parametrize(
    "value, escaped",
    [("", ""), ("plain", "plain"), ("$HOME", "$$HOME"), ("a$$b", "a$$$$b"), ("${X:-y}", "$${X:-y}")],
)
def test_escape_env_value(value, escaped):
    assert escape_env_value(value) == escaped


@pytest.mark.parametrize(
    "text, pair",
    [
        ("KEY=VALUE", ("KEY", "VALUE")),
        ("KEY=", ("KEY", "")),
        ("URL=postgres://u:p@h/db?a=b", ("URL", "postgres://u:p@h/db?a=b")),
        ("K= spaced ", ("K", " spaced ")),
        ("a.b=1", ("a.b", "1")),
    ],
)
def test_parse_env_assignment_accepts(text, pair):
    assert parse_env_assignment("--env", text) == pair


@pytest.mark.parametrize(
    "text, reason",
    [("KEY", "no '='"), ("", "no '='"), ("=VALUE", "name is empty"), ("K=a\x00b", "NUL")],
)
def test_parse_env_assignment_rejects(text, reason):
    with pytest.raises(InvalidValue) as caught:
        parse_env_assignment("--env", text)

    assert caught.value.field == "--env"
    assert str(caught.value).startswith("--env: ")
    assert reason in str(caught.value)


def test_env_assignment_message_shows_form():
    with pytest.raises(InvalidValue) as caught:
        parse_env_assignment("--env", "sk_live_abc")

    assert "KEY=VALUE" in str(caught.value)
    assert "sk_live_abc" not in str(caught.value)


# ---------------------------------------------------------------------------
# Compose documents
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, services",
    [
        ("services:\n  web:\n    image: nginx\n", ["web"]),
        ("services:\n  web: {image: nginx}\n  db.v2_x-y: {image: postgres}\n", ["web", "db.v2_x-y"]),
        ("name: shop\nservices:\n  Web: {}\nvolumes:\n  data: {}\n", ["Web"]),
        ("{services: {api: {build: .}}}", ["api"]),
    ],
)
def test_parse_compose_document_accepts(text, services):
    document = parse_compose_document(text)

    assert list(document["services"]) == services


@pytest.mark.parametrize(
    "text, reason",
    [
        ("", "document is empty"),
        ("# only a comment\n", "document is empty"),
        ("- web\n", "must be a mapping"),
        ("just text", "must be a mapping"),
        ("version: '3'\n", "at least one service"),
        ("services:\n", "at least one service"),
        ("services: {}\n", "at least one service"),
        ("services: [web]\n", "at least one service"),
        ("services:\n  'my web': {}\n", "service name 'my web'"),
        ("services:\n  1: {}\n", "service name 1"),
        ("services:\n  web: nginx\n", "service 'web' must be a mapping"),
        ("services:\n  web:\n", "service 'web' must be a mapping"),
        ("a: 2024-02-30\n", "cannot be loaded"),
        ("a: !!python/object:os.system {}\n", "invalid YAML"),
        ("a: 1\n---\nb: 2\n", "invalid YAML"),
        ("a: \x00\n", "invalid YAML"),
    ],
)
def test_parse_compose_document_rejects(text, reason):
    with pytest.raises(InvalidValue) as caught:
        parse_compose_document(text, source="compose.yaml")

    assert caught.value.field == "compose.yaml"
    assert str(caught.value).startswith("compose.yaml: ")
    assert reason in str(caught.value)


def test_compose_yaml_error_has_position():
    text = "services:\n  web:\n    image: [nginx\n"

    with pytest.raises(InvalidValue) as caught:
        parse_compose_document(text)

    assert str(caught.value).startswith("compose file: invalid YAML at line 4, column 1: ")


def test_compose_yaml_error_column_is_one_based():
    # PyYAML reports the second ':' at line 0, column 4, counting from zero.
    with pytest.raises(InvalidValue) as caught:
        parse_compose_document("a: b: c\n")

    assert str(caught.value) == (
        "compose file: invalid YAML at line 1, column 5: mapping values are not allowed here. "
        "Fix the syntax and try again."
    )


# ---------------------------------------------------------------------------
# Compose project names
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "parts, name",
    [
        (("shop", "prod", "web"), "shop_prod_web"),
        (("Shop", "Prod", "Web"), "shop_prod_web"),
        (("my shop", "prod.eu", "web"), "my-shop_prod-eu_web"),
        (("a__b", "c", "d"), "a-b_c_d"),
        (("--a", "b", "c"), "a_b_c"),
        (("a", "b", "c--"), "a_b_c"),
        (("a", "", "c"), "a_c"),
        (("ünï", "b", "c"), "n_b_c"),
        (("a" * 20, "b" * 20, "c" * 21), "a" * 20 + "_" + "b" * 20 + "_" + "c" * 21),
    ],
)
def test_compose_project_name(parts, name):
    assert compose_project_name(*parts) == name


def test_compose_project_name_keeps_dashed_names_apart():
    assert compose_project_name("a-b", "c", "web") != compose_project_name("a", "b-c", "web")


def test_compose_project_name_shortens_with_hash():
    long_a = compose_project_name("a" * 50, "production", "web")
    long_b = compose_project_name("a" * 50, "production", "api")

    assert len(long_a) == 63
    assert len(long_b) == 63
    assert long_a != long_b
    assert long_a.startswith("a" * 50 + "_pro-")
    assert long_a[-9] == "-"
    assert all(char in "0123456789abcdef" for char in long_a[-8:])


def test_compose_project_name_drops_separator_before_hash():
    # The cut falls right after "_prod", so the prefix loses its trailing "_".
    name = compose_project_name("a" * 48, "prod", "web" * 10)

    assert len(name) == 62
    assert name.startswith("a" * 48 + "_prod-")


def test_compose_project_name_rejects_empty():
    with pytest.raises(InvalidValue, match="empty Compose project name"):
        compose_project_name("--", "..", "__")


# ---------------------------------------------------------------------------
# Property tests
# ---------------------------------------------------------------------------

# Lone surrogates (category Cs) are rejected, because they cannot be encoded as UTF-8.
TEXT_WITHOUT_NUL = st.text(alphabet=st.characters(blacklist_characters="\x00", blacklist_categories=["Cs"]))


@given(TEXT_WITHOUT_NUL)
def test_env_value_passes_unchanged(value):
    assert validate_env_value(value) == value


@given(st.text())
def test_env_escape_is_reversible(value):
    assert escape_env_value(value).replace("$$", "$") == value


@given(st.text())
def test_env_assignment_splits_at_first_equals(value):
    key, _, _ = value.partition("=")
    try:
        parsed_key, parsed_value = parse_env_assignment("--env", value)
    except InvalidValue:
        return
    assert parsed_key == key
    assert f"{parsed_key}={parsed_value}" == value


def _call_or_invalid(function, text):
    """Call function and return its result, or None when it raises InvalidValue."""
    try:
        return function(text)
    except InvalidValue:
        return None


PORT_LIKE_TEXT = st.one_of(
    st.text(),
    st.text(alphabet="0123456789:-/[].abcdeftcpud", max_size=30),
)


@settings(max_examples=300)
@given(PORT_LIKE_TEXT)
def test_parse_port_raises_only_invalid_value(text):
    mapping = _call_or_invalid(parse_port, text)
    if mapping is not None:
        assert parse_port(mapping.to_short()) == mapping
        port_key(mapping)


@given(st.dictionaries(st.sampled_from(["target", "published", "host_ip", "protocol"]), st.one_of(st.integers(), st.text(max_size=12))))
def test_parse_port_dict_raises_only_invalid_value(spec):
    _call_or_invalid(parse_port, spec)


VOLUME_LIKE_TEXT = st.one_of(
    st.text(),
    st.text(alphabet="/.:abzZ,orw-_~", max_size=30),
)


@settings(max_examples=300)
@given(VOLUME_LIKE_TEXT)
def test_parse_volume_raises_only_invalid_value(text):
    mount = _call_or_invalid(parse_volume, text)
    if mount is not None:
        assert parse_volume(mount.to_short()) == mount


@given(st.one_of(st.text(), st.text(alphabet="abAB01.:/@_-[]", max_size=40)))
def test_validate_image_reference_raises_only_invalid_value(text):
    _call_or_invalid(validate_image_reference, text)


@given(st.one_of(st.text(), st.text(alphabet="abgit@:/.-[]~", max_size=40).map(lambda s: "https://" + s)))
def test_validate_repository_url_raises_only_invalid_value(text):
    _call_or_invalid(validate_repository_url, text)


@given(st.text())
def test_validate_relative_path_raises_only_invalid_value(text):
    normalized = _call_or_invalid(lambda value: validate_relative_path("compose_path", value), text)
    if normalized is not None:
        assert not normalized.startswith(("/", "../", "-"))
        assert validate_relative_path("compose_path", normalized) == normalized


@given(st.text())
def test_validate_branch_raises_only_invalid_value(text):
    _call_or_invalid(validate_branch, text)


@settings(max_examples=300)
@given(st.one_of(st.text(), st.text(alphabet="services:web{}[]- \n'\"!&*#12", max_size=60)))
def test_parse_compose_document_raises_only_invalid_value(text):
    _call_or_invalid(parse_compose_document, text)


@given(st.text(), st.text(), st.text())
def test_compose_project_name_is_valid(project, environment, service):
    name = _call_or_invalid(lambda parts: compose_project_name(*parts), (project, environment, service))
    if name is not None:
        assert len(name) <= 63
        assert name[0].isalnum()
        assert all(char in "abcdefghijklmnopqrstuvwxyz0123456789_-" for char in name)
