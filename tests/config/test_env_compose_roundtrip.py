"""The rendered environment file, read back by the real `docker compose config`, yields every value unchanged.

`docker compose config` needs the Compose plugin but no running engine or container.
"""

import json
import shutil
import subprocess

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from deployments.compose import render_env

BASE = b"services:\n  app:\n    image: daoflow-test/none:1\n"

# What validate_env_value and validate_env_key accept: text without NUL and lone
# surrogates, and for keys also without '=' and not made only of line feeds.
VALUES = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\0"), max_size=80)
KEYS = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\0="), min_size=1, max_size=40).filter(
    lambda key: key.strip("\n")
)

HARD = {
    "DOLLAR": "$HOME $$ ${X} ${X:-default} $",
    "a.b:c": "#not a comment",
    "K$X": "'single' \"double\" \\back",
    "PEM": "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n",
    "EMPTY": "",
    "SPACES": "  lead and trail \t",
    "1": "true",
    "null": "~",
    "<<": "merge?",
    "CRLF": "a\r\nb\x85c\u2028d\ufeff",
    "line\nfeed": "key with a line feed",
}


def compose_config(directory, env_yaml: bytes) -> dict:
    (directory / "base.yaml").write_bytes(BASE)
    (directory / "env.yaml").write_bytes(env_yaml)
    completed = subprocess.run(
        ["docker", "compose", "--project-name", "daoflow-roundtrip", "-f", "base.yaml", "-f", "env.yaml",
         "config", "--format", "json"],
        cwd=directory, capture_output=True, timeout=60,
    )
    assert completed.returncode == 0, completed.stderr.decode(errors="replace")
    return json.loads(completed.stdout)["services"]["app"].get("environment") or {}


def unescape(text: str) -> str:
    # `docker compose config` prints a compose file, so it writes every literal '$' as '$$'.
    return text.replace("$$", "$")


@pytest.fixture(scope="module")
def compose_available():
    if shutil.which("docker") is None:
        pytest.skip("the docker CLI is not installed; run the tests with scripts/test.sh")
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30)
    if probe.returncode != 0:
        pytest.skip("the Docker Compose v2 plugin is not installed; run the tests with scripts/test.sh")


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(KEYS, VALUES, min_size=1, max_size=6))
@example(HARD)
def test_env_survives_compose_config(compose_available, tmp_path_factory, variables):
    directory = tmp_path_factory.mktemp("roundtrip")
    frozen = {"env": [{"key": key, "value": value, "secret": False} for key, value in variables.items()]}

    environment = compose_config(directory, render_env(frozen, ["app"]))

    read_back = {unescape(key): unescape(value) for key, value in environment.items()}
    assert read_back == variables
