"""Rendering the files a deployment writes next to the operator's compose file.

The operator's own compose file is never rewritten. The product's settings go
in two generated files passed after it with `-f`:

- `daoflow.override.yaml`: ports and volumes of the primary compose service;
- `daoflow.env.yaml` (mode 0600): the environment values, as an
  `environment:` mapping with `$` escaped as `$$`. A `.env` file would be
  re-parsed by Compose (quotes, `#`, `${...}`), a mapping reaches the
  container byte for byte.

For image and Dockerfile services the product also generates the base file.
"""

import yaml

from services.validation import PortMapping, VolumeMount, escape_env_value

BASE_FILE = "compose.yaml"
OVERRIDE_FILE = "daoflow.override.yaml"
ENV_FILE = "daoflow.env.yaml"


class _QuotedDumper(yaml.SafeDumper):
    """A dumper that writes every string double-quoted.

    PyYAML writes some strings plain or single-quoted with raw characters that a YAML
    reader treats as line breaks (NEL U+0085, U+2028, U+2029), and Compose's reader
    then folds them into spaces. In double quotes PyYAML escapes them (\\N, \\L, \\P),
    so every string reaches Compose unchanged. Numbers and booleans keep their type.
    """


_QuotedDumper.add_representer(
    str, lambda dumper, value: dumper.represent_scalar("tag:yaml.org,2002:str", value, style='"')
)


def _dump(document: dict) -> bytes:
    # width=inf keeps long values on one line, because a folded double-quoted line
    # would turn the break into a space.
    return yaml.dump(
        document, Dumper=_QuotedDumper, default_flow_style=False, sort_keys=False, allow_unicode=True,
        width=float("inf"),
    ).encode()


def built_image_tag(frozen: dict) -> str:
    """Return the local tag of an image built from a Dockerfile: one per deployment, so a rollback can reuse it."""
    return f"daoflow/{frozen['compose_project']}:deployment-{frozen['deployment_id']}"


def render_base(frozen: dict, source_dir: str | None) -> bytes:
    """Render the generated compose file of image and Dockerfile services."""
    name = frozen["service"]["name"]
    definition: dict = {}
    if frozen["source_type"] == "image":
        definition["image"] = frozen["image"]
    else:
        definition["build"] = {"context": source_dir, "dockerfile": frozen["dockerfile_path"] or "Dockerfile"}
        definition["image"] = built_image_tag(frozen)
    definition["restart"] = "unless-stopped"
    return _dump({"services": {name: definition}})


def render_override(frozen: dict, primary_service: str) -> bytes:
    ports = [PortMapping(**port).to_compose() for port in frozen["ports"]]
    volumes = [VolumeMount(**_volume_args(volume)) for volume in frozen["volumes"]]

    definition: dict = {}
    if ports:
        definition["ports"] = ports
    if volumes:
        definition["volumes"] = [volume.to_compose() for volume in volumes]
    document: dict = {"services": {primary_service: definition}}

    named = sorted({volume.source for volume in volumes if volume.type == "volume"})
    if named:
        document["volumes"] = {name: {} for name in named}
    return _dump(document)


def render_env(frozen: dict, compose_services: list[str]) -> bytes:
    """Render the environment of every service of the stack. It contains secret values, so it gets mode 0600 on the target."""
    environment = {item["key"]: escape_env_value(item["value"]) for item in frozen["env"]}
    return _dump({"services": {name: {"environment": environment} for name in compose_services}})


def _volume_args(volume: dict) -> dict:
    args = dict(volume)
    args["options"] = tuple(tuple(pair) for pair in args.get("options", ()))
    return args
