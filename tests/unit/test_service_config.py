"""Service configuration rules through model clean(), services.config and `daoflow service create|update`."""

import json
from io import StringIO

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.principal import SYSTEM
from daoflow.errors import Conflict, DaoflowError, InvalidInput
from services import actions, validation
from services.config import ServiceInput, validate_input
from services.models import (
    Environment,
    EnvironmentVariable,
    PortMapping,
    Project,
    Server,
    Service,
    VolumeMount,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def project():
    return actions.create_project(SYSTEM, "shop")


@pytest.fixture
def web(project):
    return actions.create_service(SYSTEM, project, project.environments.get(), ServiceInput(
        name="web", source_type="image", image="nginx:1.27", add_ports=["127.0.0.1:8080:80"],
        add_volumes=["data:/data"], set_env=[("MODE", "fast", False), ("TOKEN", "hunter2", True)],
    ))


def run_service(*args) -> tuple[int, dict]:
    out = StringIO()
    try:
        call_command("service", *args, "--json", stdout=out)
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    except DaoflowError as error:
        # call_command parses the arguments before the command's own error handling
        # starts, so argparse errors arrive here. The `daoflow` script prints them as
        # the same JSON document with exit code 1.
        return error.exit_code, error.as_dict()
    return code, json.loads(out.getvalue())


def snapshot() -> list:
    """Every service with its ports, volumes and variables, to prove that nothing changed."""
    rows = []
    for service in Service.objects.order_by("pk"):
        rows.append((
            service.pk, service.name, service.source_type, service.image, service.repository_url, service.branch,
            service.compose_path, service.compose_document, service.compose_service, service.dockerfile_path,
            service.target_server_id, service.compose_project,
            sorted(str(row) for row in service.ports.all()),
            sorted((row.type, row.source, row.target, row.read_only, json.dumps(row.options, sort_keys=True))
                   for row in service.volumes.all()),
            sorted((row.key, row.value, row.secret) for row in service.variables.all()),
        ))
    return rows


def validation_message(check) -> str:
    with pytest.raises(validation.InvalidValue) as caught:
        check()
    return caught.value.message


# -- model clean() ---------------------------------------------------------------------


def test_project_clean_uses_validation():
    with pytest.raises(ValidationError) as caught:
        Project(name="Bad_Name").full_clean()

    assert caught.value.message_dict["name"] == [validation_message(lambda: validation.validate_name("name",
                                                                                                     "Bad_Name"))]


def test_environment_clean_uses_validation(project):
    with pytest.raises(ValidationError) as caught:
        Environment(project=project, name="-staging").full_clean()

    assert "start and end with a letter or digit" in caught.value.message_dict["name"][0]


@pytest.mark.parametrize(
    "fields, field, text",
    [
        ({"name": "web 1"}, "name", "not a valid name"),
        ({"host": "-oProxyCommand=x"}, "host", "not a host name or address"),
        ({"host": "two words"}, "host", "not a host name or address"),
        ({"port": 0}, "port", "from 1 to 65535"),
        ({"port": 70000}, "port", "from 1 to 65535"),
        ({"user": "root@host"}, "user", "not a user name"),
    ],
)
def test_server_clean(fields, field, text):
    server = Server(**{"name": "web1", "kind": Server.KIND_SSH, "host": "192.0.2.10", "port": 22, "user": "root",
                       **fields})

    with pytest.raises(ValidationError) as caught:
        server.full_clean()

    assert text in " ".join(caught.value.message_dict[field])


def test_local_server_clean_skips_ssh_fields():
    Server(name="engine", kind=Server.KIND_LOCAL, host="", user="").full_clean()


@pytest.mark.parametrize(
    "fields, field, text",
    [
        ({"name": "Web"}, "name", "must be lowercase"),
        ({"image": "Nginx:1"}, "image", "repository names must be lowercase"),
        ({"source_type": "dockerfile", "repository_url": "http://example.com/a.git"}, "repository_url",
         "plain http://"),
        ({"branch": "a..b"}, "branch", "contains '..'"),
        ({"compose_path": "../compose.yaml"}, "compose_path", "outside the repository"),
        ({"dockerfile_path": "/Dockerfile"}, "dockerfile_path", "absolute path"),
        ({"source_type": "compose", "image": "", "compose_document": "services:\n  web: [\n"},
         "compose_document", "invalid YAML at line"),
        ({"compose_service": "web app"}, "compose_service", "not a Compose service name"),
        ({"image": ""}, "image", "An image service needs an image reference"),
    ],
)
def test_service_clean(web, fields, field, text):
    for name, value in fields.items():
        setattr(web, name, value)

    with pytest.raises(ValidationError) as caught:
        web.full_clean()

    assert text in " ".join(caught.value.message_dict[field])


def test_service_clean_normalizes_paths(web):
    web.source_type = "dockerfile"
    web.repository_url = "https://example.com/team/app.git"
    web.dockerfile_path = "./docker//Dockerfile"

    web.full_clean()

    assert web.dockerfile_path == "docker/Dockerfile"


def test_service_clean_rejects_taken_name(project, web):
    other = actions.create_service(SYSTEM, project, project.environments.get(), ServiceInput(
        name="api", source_type="image", image="nginx:1.27"))
    other.name = "web"

    with pytest.raises(ValidationError) as caught:
        other.full_clean()

    assert "__all__" in caught.value.message_dict


def test_service_clean_sets_compose_project(project):
    service = Service(project=project, environment=project.environments.get(), name="new", source_type="image",
                      image="nginx:1.27")

    service.full_clean()

    assert service.compose_project == "shop_production_new"


def test_service_clean_foreign_environment(project, web):
    other = actions.create_project(SYSTEM, "other")
    web.environment = other.environments.get()

    with pytest.raises(ValidationError) as caught:
        web.full_clean()

    assert "not an environment of project 'shop'" in caught.value.message_dict["environment"][0]


def test_port_clean_canonical(web):
    row = PortMapping(service=web, host_ip="::1", published="9000", target="90", protocol="UDP")

    row.full_clean()

    assert (row.host_ip, row.published, row.target, row.protocol) == ("::1", "9000", "90", "udp")
    assert str(row) == "[::1]:9000:90/udp"


@pytest.mark.parametrize(
    "fields, text",
    [
        ({"target": "0"}, "outside 1-65535"),
        ({"target": "80", "published": "8000-8001"}, "same length"),
        ({"target": "80", "host_ip": "localhost", "published": "80"}, "not a valid IPv4 or IPv6 address"),
        ({"target": "80", "protocol": "sctp"}, "must be tcp or udp"),
    ],
)
def test_port_clean_rejects(web, fields, text):
    with pytest.raises(ValidationError) as caught:
        PortMapping(service=web, **fields).full_clean()

    assert text in " ".join(caught.value.messages)


def test_port_clean_conflict(project, web):
    api = actions.create_service(SYSTEM, project, project.environments.get(), ServiceInput(
        name="api", source_type="image", image="nginx:1.27"))

    with pytest.raises(ValidationError) as caught:
        PortMapping(service=api, published="8080", target="80").full_clean()

    assert "conflicts with '127.0.0.1:8080:80' of service shop/web" in " ".join(caught.value.messages)


def test_volume_clean(web):
    row = VolumeMount(service=web, type="bind", source="/srv//conf/", target="/etc/app", read_only=True,
                      options={"propagation": "rshared"})

    row.full_clean()

    assert (row.source, row.target, row.options) == ("/srv/conf", "/etc/app", {"propagation": "rshared"})


@pytest.mark.parametrize(
    "fields, text",
    [
        ({"type": "bind", "source": "srv/conf", "target": "/etc"}, "must be an absolute host path"),
        ({"type": "volume", "source": "data", "target": "etc"}, "must be absolute"),
        ({"type": "volume", "source": "data", "target": "/d", "options": {"propagation": "shared"}},
         "bind options apply only to type bind"),
        ({"type": "volume", "source": "data", "target": "/d", "options": {"size": 1}}, "unknown keys size"),
    ],
)
def test_volume_clean_rejects(web, fields, text):
    with pytest.raises(ValidationError) as caught:
        VolumeMount(service=web, **fields).full_clean()

    assert text in " ".join(caught.value.messages)


@pytest.mark.parametrize(
    "key, value, field, text",
    [("A=B", "1", "key", "contains '='"), ("", "1", "key", "empty"), ("OK", "a\0", "value", "NUL")],
)
def test_variable_clean(project, key, value, field, text):
    with pytest.raises(ValidationError) as caught:
        EnvironmentVariable(project=project, key=key, value=value).full_clean()

    assert text in " ".join(caught.value.message_dict[field])


def test_variable_clean_accepts_hard_value(project):
    EnvironmentVariable(project=project, key="a.b:c", value="", secret=True).full_clean()
    EnvironmentVariable(project=project, key="PEM", value="-----BEGIN-----\n$x\n", secret=True).full_clean()


def test_variable_clean_foreign_service(project, web):
    other = actions.create_project(SYSTEM, "other")

    with pytest.raises(ValidationError) as caught:
        EnvironmentVariable(project=other, service=web, key="K", value="v").full_clean()

    assert "is not in project other" in caught.value.message_dict["service"][0]


# -- services.config.validate_input ---------------------------------------------------


@pytest.mark.parametrize(
    "data, start, text",
    [
        (ServiceInput(name="Web", labels={"name": "--name"}), "--name: 'Web'", "lowercase"),
        (ServiceInput(image="nginx:", labels={"image": "--image"}), "--image: 'nginx:'", "tag ''"),
        (ServiceInput(repository_url="ext::sh -c x", labels={"repository_url": "--repository-url"}),
         "--repository-url: 'ext::sh -c x'", "remote-helper"),
        (ServiceInput(branch="-x", labels={"branch": "--branch"}), "--branch: '-x'", "starts with '-'"),
        (ServiceInput(compose_path="/etc/passwd", labels={"compose_path": "--compose-path"}),
         "--compose-path: '/etc/passwd'", "absolute path"),
        (ServiceInput(compose_document="services: []", labels={"compose_document": "--compose-file"}),
         "--compose-file:", "'services' key must be a mapping"),
        (ServiceInput(compose_service="a b", labels={"compose_service": "--compose-service"}),
         "--compose-service: 'a b'", "not a Compose service name"),
        (ServiceInput(add_ports=["80:80:80:80"], labels={"port": "--port"}), "--port: '80:80:80:80'",
         "too many ':'"),
        (ServiceInput(add_ports=["{target: 80, mode: host}"], labels={"port": "--port"}), "--port:",
         "unknown keys mode"),
        (ServiceInput(add_volumes=["./data:/data"], labels={"volume": "--volume"}), "--volume: './data:/data'",
         "relative"),
        (ServiceInput(set_env=[("A=B", "1", False)], labels={"env": "--env"}), "--env: the variable name 'A=B'",
         "contains '='"),
        (ServiceInput(set_env=[("OK", "x\0", True)], labels={"env": "--env"}), "--env: the variable value",
         "NUL"),
        (ServiceInput(target_server="Nope", labels={"target_server": "--target-server"}),
         "--target-server: 'Nope'", "lowercase"),
        (ServiceInput(target_server="nope", labels={"target_server": "--target-server"}),
         "--target-server: no server is named 'nope'", "daoflow server list"),
        (ServiceInput(source_type="vm", labels={"source_type": "--source-type"}), "--source-type: 'vm'",
         "compose, dockerfile or image"),
    ],
)
def test_validate_input_names_flag(data, start, text):
    with pytest.raises(InvalidInput) as caught:
        validate_input(data)

    assert caught.value.message.startswith(start)
    assert text in caught.value.message


def test_validate_input_long_syntax():
    validated = validate_input(ServiceInput(
        add_ports=["{target: 53, published: 5353, host_ip: 127.0.0.1, protocol: udp}"],
        add_volumes=["{type: bind, source: /srv/a, target: /a, bind: {propagation: rslave}}"],
    ))

    assert validated.add_ports == [validation.PortMapping("53", "5353", "127.0.0.1", "udp")]
    assert validated.add_volumes == [validation.VolumeMount("bind", "/srv/a", "/a",
                                                            options=(("propagation", "rslave"),))]


def test_env_secret_never_in_message():
    with pytest.raises(InvalidInput) as caught:
        validate_input(ServiceInput(set_env=[("TOKEN", "hunter2\0", True)]))

    assert "hunter2" not in caught.value.message


# -- actions -------------------------------------------------------------------------


def test_rename_keeps_compose_project(web):
    changes = actions.update_service(SYSTEM, web, ServiceInput(name="frontend"))
    web.refresh_from_db()

    assert changes["name"] == {"before": "web", "after": "frontend"}
    assert web.name == "frontend"
    assert web.compose_project == "shop_production_web"


def test_rename_onto_taken_name_is_conflict(project, web):
    api = actions.create_service(SYSTEM, project, project.environments.get(), ServiceInput(
        name="api", source_type="image", image="nginx:1.27"))

    with pytest.raises(Conflict) as caught:
        actions.update_service(SYSTEM, api, ServiceInput(name="web", labels={"name": "--rename"}))

    assert caught.value.message.startswith("--rename: project 'shop' already has a service named 'web'")


def test_same_name_in_other_project(web):
    other = actions.create_project(SYSTEM, "other")

    service = actions.create_service(SYSTEM, other, other.environments.get(), ServiceInput(
        name="web", source_type="image", image="nginx:1.27"))

    assert service.compose_project == "other_production_web"


@pytest.mark.parametrize(
    "spec, conflict",
    [
        ("127.0.0.1:8080:80", True),
        ("8080:80", True),
        ("0.0.0.0:8080:80", True),
        ("127.0.0.2:8080:80", False),
        ("127.0.0.1:8080:80/udp", False),
        ("[::1]:8080:80", False),
        ("8079-8081:79-81", True),
        ("127.0.0.1:8081:80", False),
    ],
)
def test_port_conflict_between_services(project, web, spec, conflict):
    data = ServiceInput(name="api", source_type="image", image="nginx:1.27", add_ports=[spec])

    if conflict:
        with pytest.raises(Conflict) as caught:
            actions.create_service(SYSTEM, project, project.environments.get(), data)
        assert "of service shop/web on server local" in caught.value.message
        assert not Service.objects.filter(name="api").exists()
    else:
        actions.create_service(SYSTEM, project, project.environments.get(), data)


def test_port_conflict_other_server_allowed(project, web):
    other = Server.objects.create(name="remote", kind=Server.KIND_SSH, host="192.0.2.1", user="root")

    actions.create_service(SYSTEM, project, project.environments.get(), ServiceInput(
        name="api", source_type="image", image="nginx:1.27", add_ports=["127.0.0.1:8080:80"],
        target_server="remote"))

    assert Service.objects.get(name="api").server == other


def test_port_conflict_on_update(project, web):
    api = actions.create_service(SYSTEM, project, project.environments.get(), ServiceInput(
        name="api", source_type="image", image="nginx:1.27"))

    with pytest.raises(Conflict):
        actions.update_service(SYSTEM, api, ServiceInput(add_ports=["8080:80"]))
    assert not api.ports.exists()


def test_port_repeated_in_one_request(project):
    with pytest.raises(Conflict, match="publish the same host port"):
        actions.create_service(SYSTEM, project, project.environments.get(), ServiceInput(
            name="api", source_type="image", image="nginx:1.27", add_ports=["8080:80", "8080:81"]))


def test_moving_port_to_other_host_ip(web):
    changes = actions.update_service(SYSTEM, web, ServiceInput(remove_ports=["127.0.0.1:8080:80"],
                                                               add_ports=["127.0.0.2:8080:80"]))

    assert changes["ports"] == {"before": ["127.0.0.1:8080:80"], "after": ["127.0.0.2:8080:80"]}


# -- daoflow service create|update ------------------------------------------------------


def test_cli_update_dry_run(web):
    before = snapshot()

    code, document = run_service("update", "--name", "web", "--image", "nginx:1.28", "--secret-env", "TOKEN=new",
                                 "--env", "MODE=slow", "--dry-run")

    assert code == 3
    assert document["ok"] is True
    assert document["data"]["dry_run"] is True
    assert document["data"]["changes"] == {
        "image": {"before": "nginx:1.27", "after": "nginx:1.28"},
        "env": {"TOKEN": {"before": "********", "after": "********"}, "MODE": {"before": "fast", "after": "slow"}},
    }
    assert snapshot() == before


def test_cli_create_dry_run(project):
    code, document = run_service("create", "--project", "shop", "--name", "api", "--source-type", "image",
                                 "--image", "nginx:1.27", "--port", "127.0.0.1:9000:80", "--secret-env", "K=v",
                                 "--dry-run")

    assert code == 3
    changes = document["data"]["changes"]
    assert changes["image"] == {"before": None, "after": "nginx:1.27"}
    assert changes["ports"] == {"before": [], "after": ["127.0.0.1:9000:80"]}
    assert changes["env"] == {"K": {"before": None, "after": "********"}}
    assert changes["compose_project"]["after"] == "shop_production_api"
    assert not Service.objects.exists()


def test_cli_create_dry_run_reports_conflict(web):
    code, document = run_service("create", "--project", "shop", "--name", "web", "--source-type", "image",
                                 "--image", "nginx:1.27", "--dry-run")

    assert code == 1
    assert document["code"] == "CONFLICT"


def test_cli_needs_confirmation(web):
    before = snapshot()

    code, document = run_service("update", "--name", "web", "--image", "nginx:1.28")

    assert code == 1
    assert document["code"] == "CONFIRMATION_REQUIRED"
    assert snapshot() == before


def test_cli_invalid_value_before_confirmation(web):
    code, document = run_service("update", "--name", "web", "--image", "Nginx")

    assert code == 1
    assert document["code"] == "INVALID_INPUT"
    assert document["field"] == "--image"
    assert document["error"].startswith("--image: 'Nginx' is not a valid image reference")


@pytest.mark.parametrize(
    "flag, value, start",
    [
        ("--port", "8080:80:80:80", "--port: '8080:80:80:80' is not a valid port mapping"),
        ("--volume", "rel/path:/data", "--volume: 'rel/path:/data' is not a valid volume mount"),
        ("--env", "NOEQUALS", "--env: the assignment has no '='"),
        ("--secret-env", "=value", "--secret-env: the variable name is empty"),
        ("--branch", "a b", "--branch: 'a b' is not a valid git branch name"),
        ("--compose-path", "../x.yaml", "--compose-path: '../x.yaml' points outside the repository"),
        ("--dockerfile-path", "/Dockerfile", "--dockerfile-path: '/Dockerfile' is an absolute path"),
        ("--repository-url", "http://x/y.git", "--repository-url: 'http://x/y.git' is not a supported"),
        ("--compose-service", "a/b", "--compose-service: 'a/b' is not a Compose service name"),
        ("--rename", "Web", "--rename: 'Web' is not a valid name"),
        ("--remove-port", "9999:99", "--remove-port: '9999:99' is not a port of web"),
        ("--remove-volume", "x1:/x", "--remove-volume: 'x1:/x' is not a volume of web"),
        ("--unset-env", "NOPE", "--unset-env: web has no variable 'NOPE'"),
        ("--target-server", "nope", "--target-server: no server is named 'nope'"),
    ],
)
def test_cli_error_names_flag(web, flag, value, start):
    before = snapshot()

    code, document = run_service("update", "--name", "web", f"{flag}={value}", "--yes")

    assert code == 1
    assert document["code"] == "INVALID_INPUT"
    assert document["error"].startswith(start)
    assert snapshot() == before


def test_cli_one_invalid_writes_nothing(web):
    before = snapshot()

    code, document = run_service(
        "update", "--name", "web", "--image", "nginx:1.28", "--port", "127.0.0.1:9090:90", "--volume",
        "/srv/x:/x:ro", "--env", "NEW=1", "--unset-env", "MODE", "--volume", "/srv/y:relative", "--yes",
    )

    assert code == 1
    assert "--volume: '/srv/y:relative'" in document["error"]
    assert snapshot() == before


def test_cli_update_applies_all(project, web, tmp_path):
    Server.objects.create(name="remote", kind=Server.KIND_SSH, host="192.0.2.1", user="root")
    compose_file = tmp_path / "compose.yaml"
    compose_file.write_bytes(b"services:\n  app:\n    image: nginx:1.27\n    command: [\"echo\", \"$$HOME\"]\n")

    code, document = run_service(
        "update", "--name", "web", "--project", "shop", "--source-type", "compose", "--image", "",
        "--compose-file", str(compose_file), "--compose-service", "app", "--remove-port", "127.0.0.1:8080:80",
        "--port", "[::1]:8080:80", "--remove-volume", "data:/data", "--volume", "/srv/conf:/etc/conf:ro,z",
        "--unset-env", "MODE", "--env", "NEW=a=b", "--target-server", "remote", "--rename", "frontend", "--yes",
    )

    assert code == 0, document
    service = Service.objects.get(pk=web.pk)
    assert service.name == "frontend"
    assert service.compose_project == "shop_production_web"
    assert service.compose_document == compose_file.read_text()
    assert service.compose_service == "app"
    assert service.target_server.name == "remote"
    assert [str(row) for row in service.ports.all()] == ["[::1]:8080:80"]
    assert [str(row) for row in service.volumes.all()] == ["/srv/conf:/etc/conf:ro,z"]
    assert sorted(service.variables.values_list("key", "value")) == [("NEW", "a=b"), ("TOKEN", "hunter2")]
    assert document["data"]["service"]["name"] == "frontend"
    assert set(document["data"]["changes"]) >= {"name", "source_type", "compose_document", "ports", "volumes",
                                                "env", "target_server", "compose_service", "image"}


def test_cli_project_disambiguates(web):
    other = actions.create_project(SYSTEM, "other")
    actions.create_service(SYSTEM, other, other.environments.get(), ServiceInput(
        name="web", source_type="image", image="nginx:1.27"))

    ambiguous, document = run_service("update", "--name", "web", "--image", "nginx:2", "--yes")
    code, _ = run_service("update", "--name", "web", "--project", "other", "--image", "nginx:2", "--yes")

    assert ambiguous == 1
    assert "several projects (other, shop)" in document["error"] or "several projects (shop, other)" in \
        document["error"]
    assert code == 0
    assert Service.objects.get(project=other).image == "nginx:2"
    assert Service.objects.get(project=web.project).image == "nginx:1.27"


def test_cli_rename_conflict(project, web):
    actions.create_service(SYSTEM, project, project.environments.get(), ServiceInput(
        name="api", source_type="image", image="nginx:1.27"))

    code, document = run_service("update", "--name", "api", "--rename", "web", "--yes")

    assert code == 1
    assert document["code"] == "CONFLICT"
    assert "already has a service named 'web'" in document["error"]


def test_cli_compose_file_missing(web, tmp_path):
    code, document = run_service("update", "--name", "web", "--compose-file", str(tmp_path / "none.yaml"),
                                 "--yes")

    assert code == 1
    assert document["error"].startswith("--compose-file:")
    assert "does not exist" in document["error"]


def test_cli_compose_file_yaml_error_line(project, tmp_path):
    compose_file = tmp_path / "compose.yaml"
    compose_file.write_text("services:\n  web:\n    image: nginx\n   ports: [\n")

    code, document = run_service("create", "--project", "shop", "--name", "api", "--source-type", "compose",
                                 "--compose-file", str(compose_file), "--yes")

    assert code == 1
    assert document["error"].startswith("--compose-file: invalid YAML at line 4")


def test_cli_create_output(project):
    code, document = run_service("create", "--project", "shop", "--name", "api", "--source-type", "image",
                                 "--image", "nginx:1.27", "--port", "{target: 80, published: 9000, protocol: udp}",
                                 "--secret-env", "TOKEN=s3cr3t", "--yes")

    assert code == 0
    assert document["data"]["service"]["ports"][0]["spec"] == "9000:80/udp"
    assert document["data"]["changes"]["env"] == {"TOKEN": {"before": None, "after": "********"}}
    assert "s3cr3t" not in json.dumps(document["data"]["changes"])


# -- fuzzing ---------------------------------------------------------------------------

FLAG_VALUES = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["", "-", ":", "a:b:c", "80", "127.0.0.1:1:1", "/x:/y:ro", "data:/d", "K=", "=v", "{", "{a: 1}",
                     "{target: x}", "[::1]:1:1", "nginx:1.27", "file:///x", "\udcff", "a\0b", "x" * 300]),
)
UPDATE_FLAGS = ["--image", "--rename", "--repository-url", "--branch", "--compose-path", "--compose-service",
                "--dockerfile-path", "--port", "--volume", "--env", "--secret-env", "--remove-port",
                "--remove-volume", "--unset-env", "--target-server", "--source-type", "--compose-file"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(UPDATE_FLAGS), FLAG_VALUES), min_size=1, max_size=5))
def test_fuzzed_update_never_crashes(web, flags):
    before = snapshot()
    args = [f"{flag}={value}" for flag, value in flags]

    code, document = run_service("update", "--name", "web", *args, "--yes")

    assert code in (0, 1), document
    assert document["ok"] is (code == 0)
    if code == 1:
        assert document["code"] in ("INVALID_INPUT", "CONFLICT", "NOT_FOUND")
        assert snapshot() == before
        assert "hunter2" not in document["error"]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=FLAG_VALUES, flags=st.lists(st.tuples(st.sampled_from(UPDATE_FLAGS[:15]), FLAG_VALUES), max_size=4))
def test_fuzzed_create_never_crashes(project, name, flags):
    before = snapshot()
    args = [f"{flag.replace('--rename', '--name')}={value}" for flag, value in flags
            if flag not in ("--remove-port", "--remove-volume", "--unset-env")]

    code, document = run_service("create", "--project", "shop", f"--name={name}", "--source-type", "image",
                                 *args, "--yes")

    assert code in (0, 1), document
    if code == 1:
        assert document["code"] in ("INVALID_INPUT", "CONFLICT", "NOT_FOUND")
        assert snapshot() == before


def test_cli_env_not_utf8_hides_value(web):
    code, document = run_service("update", "--name", "web", "--secret-env", "TOKEN=hunter\udcff", "--yes")

    assert code == 1
    assert document["error"].startswith("--secret-env: the assignment is not valid UTF-8 text")
    assert "hunter" not in document["error"]
