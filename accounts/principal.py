"""The acting principal: a user, a user through an API token, or the local system operator."""

from dataclasses import dataclass, field

from . import scopes as catalogue


@dataclass(frozen=True)
class Principal:
    """The acting identity and its scopes before object grants."""

    user: object | None = None
    token: object | None = None
    scopes: frozenset[str] = field(default_factory=frozenset)
    unrestricted: bool = False
    is_system: bool = False

    @property
    def label(self) -> str:
        if self.is_system:
            return "system operator (local command line)"
        username = getattr(self.user, "username", "?")
        if self.token is not None:
            return f"{username} (token {self.token.name})"
        return username

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes


SYSTEM = Principal(scopes=frozenset(catalogue.ALL_SCOPES), unrestricted=True, is_system=True)


def role_of(user) -> str:
    membership = getattr(user, "membership", None)
    if membership is not None:
        return membership.role
    return catalogue.OWNER if getattr(user, "is_superuser", False) else catalogue.VIEWER


def principal_for(user, token=None) -> Principal:
    """Build the principal of a user, narrowed by the API token it used, if any."""
    role = role_of(user)
    scopes = catalogue.ROLE_SCOPES[role]
    if token is not None:
        # A token never exceeds its owner's role, even if the role shrank
        # after the token was made.
        scopes = scopes & frozenset(token.scopes)
    return Principal(
        user=user,
        token=token,
        scopes=frozenset(scopes),
        unrestricted=role in catalogue.UNRESTRICTED_ROLES,
    )
