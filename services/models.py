"""Projects, environments, target servers, services and their configuration."""

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Lower
from fernet_fields import EncryptedTextField
from guardian.models import UserObjectPermissionBase

from .querysets import ServiceQuerySet, ProjectQuerySet

# Object permissions, one per grantable scope ("service:read" -> "scope_service_read").
OBJECT_PERMISSIONS = [
    ("scope_service_read", "service:read"),
    ("scope_service_update", "service:update"),
    ("scope_deploy_read", "deploy:read"),
    ("scope_deploy_start", "deploy:start"),
    ("scope_deploy_cancel", "deploy:cancel"),
    ("scope_deploy_rollback", "deploy:rollback"),
    ("scope_env_read", "env:read"),
    ("scope_env_write", "env:write"),
    ("scope_secrets_read", "secrets:read"),
    ("scope_logs_read", "logs:read"),
]


def permission_codename(scope: str) -> str:
    return "scope_" + scope.replace(":", "_")


def _run_checks(checks) -> dict:
    """Run (model field, check) pairs and collect each InvalidValue message under its field.

    A check returns the normalized value, which is written back to the field.
    """
    from .validation import InvalidValue

    errors: dict[str, list[str]] = {}
    normalized = {}
    for field_name, check in checks:
        try:
            normalized[field_name] = check()
        except InvalidValue as error:
            errors.setdefault(field_name, []).append(error.message)
    if errors:
        raise ValidationError(errors)
    return normalized


class Server(models.Model):
    """A Docker host that deployments run on: the local engine or an SSH target."""

    KIND_LOCAL = "local"
    KIND_SSH = "ssh"
    KIND_CHOICES = [(KIND_LOCAL, "Local Docker engine"), (KIND_SSH, "SSH")]

    name = models.CharField(max_length=63, unique=True)
    kind = models.CharField(max_length=10, choices=KIND_CHOICES, default=KIND_SSH)
    host = models.CharField(max_length=255, blank=True)
    port = models.PositiveIntegerField(default=22)
    user = models.CharField(max_length=64, default="root", blank=True)
    private_key = EncryptedTextField(blank=True, default="")
    # The key offered by the host when it was registered, in known_hosts form
    # ("ssh-ed25519 AAAA..."), and the one an operator approved. Only the
    # approved key is ever trusted.
    scanned_host_key = models.TextField(blank=True)
    approved_host_key = models.TextField(blank=True)
    approved_at = models.DateTimeField(null=True, blank=True)
    workdir_root = models.CharField(
        max_length=255,
        blank=True,
        help_text="Directory on the target that holds one folder per service; empty for the default.",
    )
    max_concurrent_deployments = models.PositiveIntegerField(default=2)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from . import validation

        checks = [("name", lambda: validation.validate_name("name", self.name))]
        if self.kind == self.KIND_SSH:
            checks += [
                ("host", lambda: validation.validate_ssh_host("host", self.host)),
                ("port", lambda: validation.validate_tcp_port("port", self.port)),
                ("user", lambda: validation.validate_ssh_user("user", self.user)),
            ]
        _run_checks(checks)

    @property
    def is_local(self) -> bool:
        return self.kind == self.KIND_LOCAL

    @property
    def host_key_approved(self) -> bool:
        return self.is_local or bool(self.approved_host_key)

    @property
    def address(self) -> str:
        return "local engine" if self.is_local else f"{self.user}@{self.host}:{self.port}"


class Project(models.Model):
    name = models.CharField(max_length=63, unique=True)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ProjectQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        permissions = OBJECT_PERMISSIONS

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from . import validation

        _run_checks([("name", lambda: validation.validate_name("name", self.name))])


class Environment(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="environments")
    name = models.CharField(max_length=63)
    default_server = models.ForeignKey(
        Server, null=True, blank=True, on_delete=models.PROTECT, related_name="environments"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["project__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="unique_environment_per_project"),
        ]

    def __str__(self) -> str:
        return f"{self.project.name}/{self.name}"

    def clean(self) -> None:
        from . import validation

        _run_checks([("name", lambda: validation.validate_name("name", self.name))])


class Service(models.Model):
    SOURCE_COMPOSE = "compose"
    SOURCE_DOCKERFILE = "dockerfile"
    SOURCE_IMAGE = "image"
    SOURCE_CHOICES = [
        (SOURCE_COMPOSE, "Compose stack"),
        (SOURCE_DOCKERFILE, "Dockerfile in a Git repository"),
        (SOURCE_IMAGE, "Pre-built image"),
    ]

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="services")
    environment = models.ForeignKey(Environment, on_delete=models.PROTECT, related_name="services")
    name = models.CharField(max_length=63)
    source_type = models.CharField(max_length=20, choices=SOURCE_CHOICES)
    repository_url = models.CharField(max_length=500, blank=True)
    branch = models.CharField(max_length=255, blank=True)
    compose_path = models.CharField(max_length=500, blank=True)
    compose_document = models.TextField(
        blank=True, help_text="An inline compose.yaml, for compose services without a repository."
    )
    compose_service = models.CharField(
        max_length=255,
        blank=True,
        help_text="The service of the compose stack that gets the ports and volumes; empty for the first one.",
    )
    dockerfile_path = models.CharField(max_length=500, blank=True)
    image = models.CharField(max_length=512, blank=True)
    target_server = models.ForeignKey(
        Server, null=True, blank=True, on_delete=models.PROTECT, related_name="services"
    )
    # Fixed when the service is created, so a rename never orphans the
    # containers that earlier deployments started on the target.
    compose_project = models.CharField(max_length=63, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ServiceQuerySet.as_manager()

    class Meta:
        ordering = ["project__name", "name"]
        permissions = OBJECT_PERMISSIONS
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="unique_service_per_project"),
        ]

    def __str__(self) -> str:
        return f"{self.project.name}/{self.name}"

    @property
    def server(self) -> Server | None:
        return self.target_server or self.environment.default_server

    def clean(self) -> None:
        """Run the checks of `daoflow service create|update`, so the admin gets the same messages."""
        from daoflow.errors import DaoflowError

        from . import validation
        from .config import check_port_conflicts, check_source_complete

        checks = [
            ("name", lambda: validation.validate_name("name", self.name)),
            ("compose_service", lambda: validation.validate_compose_service("compose_service", self.compose_service)),
        ]
        optional = [
            ("image", lambda: validation.validate_image_reference(self.image)),
            ("repository_url", lambda: validation.validate_repository_url(self.repository_url)),
            ("branch", lambda: validation.validate_branch(self.branch)),
            ("compose_path", lambda: validation.validate_relative_path("compose_path", self.compose_path)),
            ("dockerfile_path", lambda: validation.validate_relative_path("dockerfile_path", self.dockerfile_path)),
            ("compose_document", lambda: self._checked_document()),
        ]
        checks += [(name, check) for name, check in optional if getattr(self, name)]
        for name, value in _run_checks(checks).items():
            setattr(self, name, value)

        if self.environment_id is not None and self.project_id is not None:
            if self.environment.project_id != self.project_id:
                raise ValidationError({"environment": f"environment: {self.environment} is not an environment "
                                                      f"of project {self.project.name!r}. Choose one of its own."})
        if self.pk is None and not self.compose_project and self.environment_id is not None:
            # Set once at creation, and later renames keep it (see the field's comment).
            self.compose_project = _run_checks([("name", lambda: validation.compose_project_name(
                self.project.name, self.environment.name, self.name))])["name"]
        try:
            check_source_complete(self)
            if self.pk is not None and self.environment_id is not None:
                check_port_conflicts(self, [row.spec for row in self.ports.all()])
        except DaoflowError as error:
            field = error.extra.get("field")
            raise ValidationError({field: error.message} if field else error.message) from None

    def _checked_document(self) -> str:
        from . import validation

        validation.parse_compose_document(self.compose_document, "compose_document")
        return self.compose_document


class EnvironmentVariable(models.Model):
    """A variable at project, environment or service level; the narrowest level wins."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="variables")
    environment = models.ForeignKey(
        Environment, null=True, blank=True, on_delete=models.CASCADE, related_name="variables"
    )
    service = models.ForeignKey(
        Service, null=True, blank=True, on_delete=models.CASCADE, related_name="variables"
    )
    key = models.CharField(max_length=255)
    value = EncryptedTextField(blank=True, default="")
    secret = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["key"]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "key"],
                condition=models.Q(environment__isnull=True, service__isnull=True),
                name="unique_project_variable",
            ),
            models.UniqueConstraint(
                fields=["environment", "key"],
                condition=models.Q(service__isnull=True),
                name="unique_environment_variable",
            ),
            models.UniqueConstraint(fields=["service", "key"], name="unique_service_variable"),
        ]

    def __str__(self) -> str:
        return self.key

    def clean(self) -> None:
        from . import validation

        _run_checks([
            ("key", lambda: validation.validate_env_key(self.key)),
            ("value", lambda: validation.validate_env_value(self.value)),
        ])
        if self.service_id is not None and self.service.project_id != self.project_id:
            raise ValidationError({"service": f"service: {self.service} is not in project {self.project}. "
                                              "Choose a service of the variable's project."})
        if self.environment_id is not None and self.environment.project_id != self.project_id:
            raise ValidationError({"environment": f"environment: {self.environment} is not in project "
                                                  f"{self.project}. Choose an environment of the variable's project."})
        if (self.service_id is not None and self.environment_id is not None
                and self.service.environment_id != self.environment_id):
            raise ValidationError({"environment": f"environment: service {self.service} belongs to environment "
                                                  f"{self.service.environment}, not {self.environment}. "
                                                  "Leave the environment empty or choose the service's own."})

    @property
    def level(self) -> str:
        if self.service_id:
            return "service"
        if self.environment_id:
            return "environment"
        return "project"


class PortMapping(models.Model):
    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="ports")
    host_ip = models.CharField(max_length=64, blank=True)
    published = models.CharField(max_length=16, blank=True)
    target = models.CharField(max_length=16)
    protocol = models.CharField(max_length=3, default="tcp")

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.spec.to_short()

    def clean(self) -> None:
        """Validate the mapping as Compose would, store it canonically and reject host port conflicts."""
        from daoflow.errors import Conflict

        from . import validation
        from .config import check_port_conflicts

        spec = _run_checks([(None, lambda: validation.parse_port(self._short_text()))])[None]
        self.target, self.published, self.host_ip, self.protocol = (
            spec.target, spec.published, spec.host_ip, spec.protocol)

        if self.service_id is None:
            return
        siblings = [row.spec for row in self.service.ports.exclude(pk=self.pk)] if self.service.pk else []
        try:
            check_port_conflicts(self.service, siblings + [spec])
        except Conflict as error:
            raise ValidationError(error.message) from None

    def _short_text(self) -> str:
        """Return the fields as Compose short syntax, [HOST_IP:][PUBLISHED:]TARGET/PROTOCOL."""
        host = f"[{self.host_ip}]" if ":" in self.host_ip else self.host_ip
        if host:
            text = f"{host}:{self.published}:{self.target}"
        elif self.published:
            text = f"{self.published}:{self.target}"
        else:
            text = self.target
        return f"{text}/{self.protocol or 'tcp'}"

    @property
    def spec(self):
        from .validation import PortMapping as PortSpec

        return PortSpec(
            target=self.target, published=self.published, host_ip=self.host_ip, protocol=self.protocol
        )


class VolumeMount(models.Model):
    TYPE_CHOICES = [("volume", "Named volume"), ("bind", "Bind mount")]

    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="volumes")
    type = models.CharField(max_length=10, choices=TYPE_CHOICES)
    source = models.CharField(max_length=1000)
    target = models.CharField(max_length=1000)
    read_only = models.BooleanField(default=False)
    options = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.spec.to_short()

    def clean(self) -> None:
        """Validate the mount in Compose long syntax and store it canonically."""
        from . import validation

        if not isinstance(self.options, dict):
            raise ValidationError({"options": "options: expected a mapping such as {\"propagation\": \"rshared\"}."})
        long_syntax = {"type": self.type, "source": self.source, "target": self.target, "read_only": self.read_only}
        bind = {key: value for key, value in self.options.items() if key in validation.BIND_OPTION_KEYS}
        volume = {key: value for key, value in self.options.items() if key in validation.VOLUME_OPTION_KEYS}
        unknown = sorted(set(self.options) - set(bind) - set(volume) - {"consistency"})
        if unknown:
            raise ValidationError({"options": f"options: unknown keys {', '.join(map(str, unknown))}. Use "
                                              f"{', '.join(sorted(validation.BIND_OPTION_KEYS | validation.VOLUME_OPTION_KEYS))} "
                                              "or consistency."})
        if bind:
            long_syntax["bind"] = bind
        if volume:
            long_syntax["volume"] = volume
        if "consistency" in self.options:
            long_syntax["consistency"] = self.options["consistency"]
        spec = _run_checks([(None, lambda: validation.parse_volume(long_syntax))])[None]
        self.type, self.source, self.target, self.read_only = spec.type, spec.source, spec.target, spec.read_only
        self.options = dict(spec.options)

    @property
    def spec(self):
        from .validation import VolumeMount as VolumeSpec

        return VolumeSpec(
            type=self.type,
            source=self.source,
            target=self.target,
            read_only=self.read_only,
            options=tuple(sorted(self.options.items())),
        )


class ProjectUserObjectPermission(UserObjectPermissionBase):
    content_object = models.ForeignKey(Project, on_delete=models.CASCADE)


class ServiceUserObjectPermission(UserObjectPermissionBase):
    content_object = models.ForeignKey(Service, on_delete=models.CASCADE)
