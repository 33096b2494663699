"""The scope catalogue and the scopes each role carries.

A scope is `resource:action`. A principal's effective scopes are its role's
scopes, narrowed by its API token's scopes and by object grants.
"""

SERVER_READ = "server:read"
SERVER_WRITE = "server:write"
DEPLOY_READ = "deploy:read"
DEPLOY_START = "deploy:start"
DEPLOY_CANCEL = "deploy:cancel"
DEPLOY_ROLLBACK = "deploy:rollback"
SERVICE_READ = "service:read"
SERVICE_UPDATE = "service:update"
ENV_READ = "env:read"
ENV_WRITE = "env:write"
SECRETS_READ = "secrets:read"
LOGS_READ = "logs:read"
MEMBERS_MANAGE = "members:manage"
TOKENS_MANAGE = "tokens:manage"

ALL_SCOPES: tuple[str, ...] = (
    SERVER_READ,
    SERVER_WRITE,
    DEPLOY_READ,
    DEPLOY_START,
    DEPLOY_CANCEL,
    DEPLOY_ROLLBACK,
    SERVICE_READ,
    SERVICE_UPDATE,
    ENV_READ,
    ENV_WRITE,
    SECRETS_READ,
    LOGS_READ,
    MEMBERS_MANAGE,
    TOKENS_MANAGE,
)

# Scopes that can be granted on a project or a service; the others are
# installation-wide (servers, members, tokens).
OBJECT_SCOPES: tuple[str, ...] = (
    DEPLOY_READ,
    DEPLOY_START,
    DEPLOY_CANCEL,
    DEPLOY_ROLLBACK,
    SERVICE_READ,
    SERVICE_UPDATE,
    ENV_READ,
    ENV_WRITE,
    SECRETS_READ,
    LOGS_READ,
)

OWNER = "owner"
ADMIN = "admin"
OPERATOR = "operator"
DEVELOPER = "developer"
VIEWER = "viewer"

ROLE_SCOPES: dict[str, frozenset[str]] = {
    OWNER: frozenset(ALL_SCOPES),
    ADMIN: frozenset(ALL_SCOPES),
    OPERATOR: frozenset(ALL_SCOPES) - {SECRETS_READ, MEMBERS_MANAGE, TOKENS_MANAGE},
    DEVELOPER: frozenset(
        {SERVER_READ, DEPLOY_READ, DEPLOY_START, SERVICE_READ, ENV_READ, ENV_WRITE, LOGS_READ}
    ),
    VIEWER: frozenset({SERVER_READ, DEPLOY_READ, SERVICE_READ, ENV_READ, LOGS_READ}),
}

ROLE_CHOICES = [(role, role.capitalize()) for role in ROLE_SCOPES]

# Roles that reach every object without grants.
UNRESTRICTED_ROLES = frozenset({OWNER, ADMIN})


def validate_scopes(scopes: list[str]) -> list[str]:
    unknown = sorted(set(scopes) - set(ALL_SCOPES))
    if unknown:
        raise ValueError(
            f"Unknown scope(s) {', '.join(repr(s) for s in unknown)}; "
            f"valid scopes are {', '.join(ALL_SCOPES)}."
        )
    return sorted(set(scopes))
