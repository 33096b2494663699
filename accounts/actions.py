"""Every write to users, roles, object grants and API tokens: one function each.

Each takes the acting principal, checks its scope, runs in one transaction
and writes the audit entry in that transaction.
"""

import logging
from datetime import datetime

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.contrib.auth.password_validation import validate_password
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from daoflow.errors import Conflict, InvalidInput, ScopeDenied

from . import audit, scopes
from .models import APIToken, Membership, hash_token
from .permissions import require_scope
from .principal import role_of

logger = logging.getLogger(__name__)

TOKEN_NAME_MAX_LENGTH = 100


# -- users and roles --------------------------------------------------------


def _validate_role(role: str) -> str:
    if role not in scopes.ROLE_SCOPES:
        raise InvalidInput(
            f"--role: {role!r} is not a role; use one of {', '.join(scopes.ROLE_SCOPES)}.", field="role"
        )
    return role


def _require_role_assignable(principal, role: str) -> None:
    # Only an owner makes owners, so an admin cannot raise anyone (or itself) above admin.
    if role == scopes.OWNER and not principal.is_system and role_of(principal.user) != scopes.OWNER:
        raise InvalidInput(
            f"--role: only an owner can give the role {role!r}; ask an owner, or choose admin.", field="role"
        )


@audit.records_denials("user.create")
def create_user(principal, *, username: str, role: str, password: str | None = None, email: str = ""):
    """Create a user with a role; without a password the user can only act through API tokens."""
    require_scope(principal, scopes.MEMBERS_MANAGE)
    _validate_role(role)
    _require_role_assignable(principal, role)
    try:
        UnicodeUsernameValidator()(username)
    except ValidationError:
        raise InvalidInput(
            f"--username: {username!r} is not a valid user name; use letters, digits and @ . + - _ only.",
            field="username",
        ) from None
    if not username or len(username) > 150:
        raise InvalidInput("--username: give a user name of 1 to 150 characters.", field="username")
    User = get_user_model()
    if password is not None:
        try:
            validate_password(password, User(username=username, email=email))
        except ValidationError as error:
            raise InvalidInput(f"--password-stdin: {' '.join(error.messages)}", field="password") from None

    with transaction.atomic():
        if User.objects.filter(username=username).exists():
            raise Conflict(f"A user named {username!r} already exists; list users with `daoflow user list`.")
        try:
            with transaction.atomic():
                user = User.objects.create_user(username=username, email=email, password=password)
        except IntegrityError:
            raise Conflict(f"A user named {username!r} already exists; list users with `daoflow user list`.") from None
        if password is None:
            user.set_unusable_password()
        # Staff status only opens the admin's door: what a user sees and
        # changes there comes from its role and grants.
        user.is_staff = password is not None
        user.save(update_fields=["password", "is_staff"])
        Membership.objects.create(user=user, role=role)
        audit.record(principal, "user.create", user, scope=scopes.MEMBERS_MANAGE,
                     target_type="user", target_label=username,
                     diff={"username": username, "role": role, "password": "set" if password else "none"})
    logger.info("user=%s created role=%s", user.pk, role)
    return user


@audit.records_denials("user.set_role")
def set_role(principal, user, role: str) -> dict:
    """Change a user's role; return the change as {"role": {"before", "after"}} (empty if unchanged)."""
    require_scope(principal, scopes.MEMBERS_MANAGE)
    _validate_role(role)
    before = role_of(user)
    _require_role_assignable(principal, role)
    if before == scopes.OWNER:
        _require_role_assignable(principal, before)
    if before == role:
        return {}

    with transaction.atomic():
        if before == scopes.OWNER and role != scopes.OWNER:
            others = Membership.objects.filter(role=scopes.OWNER).exclude(user=user).exists()
            if not others:
                raise Conflict(f"{user.username!r} is the last owner; make another user owner first.")
        Membership.objects.update_or_create(user=user, defaults={"role": role})
        if user.is_superuser:
            # Django's superuser flag would bypass the role everywhere
            # Django checks permissions itself; the role decides instead.
            type(user).objects.filter(pk=user.pk).update(is_superuser=False)
        changes = {"role": {"before": before, "after": role}}
        audit.record(principal, "user.set_role", user, scope=scopes.MEMBERS_MANAGE,
                     target_type="user", target_label=user.username, diff=changes)
    return changes


# -- object grants ----------------------------------------------------------


def _validate_object_scopes(requested: list[str]) -> list[str]:
    if not requested:
        raise InvalidInput(
            f"--scope: give at least one scope; grantable scopes are {', '.join(scopes.OBJECT_SCOPES)}.",
            field="scope",
        )
    not_grantable = sorted(set(requested) - set(scopes.OBJECT_SCOPES))
    if not_grantable:
        raise InvalidInput(
            f"--scope: {', '.join(not_grantable)} cannot be granted on a project or service; "
            f"grantable scopes are {', '.join(scopes.OBJECT_SCOPES)}. Installation-wide scopes come from the role.",
            field="scope",
        )
    return sorted(set(requested))


def _grant_table_and_permissions(obj, requested: list[str]):
    from services.models import Project, ProjectUserObjectPermission, ServiceUserObjectPermission, permission_codename

    table = ProjectUserObjectPermission if isinstance(obj, Project) else ServiceUserObjectPermission
    codenames = [permission_codename(scope) for scope in requested]
    permissions = Permission.objects.filter(
        content_type=ContentType.objects.get_for_model(type(obj)), codename__in=codenames
    )
    return table, list(permissions)


def _target_label(obj) -> str:
    from services.models import Project

    return f"project {obj.name}" if isinstance(obj, Project) else f"service {obj}"


@audit.records_denials("grant.add")
def grant(principal, user, obj, requested: list[str]) -> dict:
    """Grant scopes on a project (covering its services) or on one service; return what was added."""
    require_scope(principal, scopes.MEMBERS_MANAGE)
    requested = _validate_object_scopes(requested)
    table, permissions = _grant_table_and_permissions(obj, requested)

    with transaction.atomic():
        existing = set(
            table.objects.filter(user=user, content_object=obj).values_list("permission__codename", flat=True)
        )
        added = [p for p in permissions if p.codename not in existing]
        table.objects.bulk_create(
            [table(user=user, content_object=obj, permission=p) for p in added], ignore_conflicts=True
        )
        added_scopes = sorted(_scope_of(p.codename) for p in added)
        if added_scopes:
            audit.record(principal, "grant.add", obj, scope=scopes.MEMBERS_MANAGE,
                         target_label=_target_label(obj),
                         diff={"user": user.username, "scopes": added_scopes})
    return _grant_summary(user, obj, added_scopes, "added")


@audit.records_denials("grant.remove")
def revoke(principal, user, obj, requested: list[str]) -> dict:
    """Remove scopes granted on a project or a service; return what was removed."""
    require_scope(principal, scopes.MEMBERS_MANAGE)
    requested = _validate_object_scopes(requested)
    table, permissions = _grant_table_and_permissions(obj, requested)

    with transaction.atomic():
        rows = table.objects.filter(user=user, content_object=obj, permission__in=permissions)
        removed_scopes = sorted(_scope_of(codename) for codename in rows.values_list("permission__codename", flat=True))
        rows.delete()
        if removed_scopes:
            audit.record(principal, "grant.remove", obj, scope=scopes.MEMBERS_MANAGE,
                         target_label=_target_label(obj),
                         diff={"user": user.username, "scopes": removed_scopes})
    return _grant_summary(user, obj, removed_scopes, "removed")


def _scope_of(codename: str) -> str:
    from services.models import OBJECT_PERMISSIONS

    return dict(OBJECT_PERMISSIONS)[codename]


def grants_of(user, obj) -> list[str]:
    from services.models import Project, ProjectUserObjectPermission, ServiceUserObjectPermission

    table = ProjectUserObjectPermission if isinstance(obj, Project) else ServiceUserObjectPermission
    codenames = table.objects.filter(user=user, content_object=obj).values_list("permission__codename", flat=True)
    return sorted(_scope_of(c) for c in codenames)


def _grant_summary(user, obj, changed: list[str], verb: str) -> dict:
    role = role_of(user)
    granted = grants_of(user, obj)
    summary = {
        "user": user.username,
        "role": role,
        "target": _target_label(obj),
        verb: changed,
        "granted": granted,
        # What the grants give in practice: a grant never exceeds the role.
        "effective": sorted(set(granted) & scopes.ROLE_SCOPES[role]),
    }
    if role in scopes.UNRESTRICTED_ROLES:
        summary["note"] = f"{user.username} is {role} and reaches every object without grants."
    elif set(granted) - scopes.ROLE_SCOPES[role]:
        summary["note"] = (
            f"The role {role} lacks {', '.join(sorted(set(granted) - scopes.ROLE_SCOPES[role]))}, "
            "so those grants take effect only if the role changes."
        )
    return summary


# -- API tokens -------------------------------------------------------------


def _require_token_management(principal, user) -> None:
    """Tokens of other users need tokens:manage; a user signed in without a token manages its own."""
    acting_for_self = (
        not principal.is_system
        and principal.token is None
        and getattr(principal.user, "pk", None) == user.pk
    )
    if not acting_for_self:
        require_scope(principal, scopes.TOKENS_MANAGE)
        # A token acts as its user, so managing an owner's tokens would let
        # an admin act as that owner; only owners manage owners' tokens.
        if role_of(user) == scopes.OWNER and not principal.is_system and role_of(principal.user) != scopes.OWNER:
            raise ScopeDenied(
                scopes.TOKENS_MANAGE, principal.scopes, f"the tokens of {user.username} (an owner; owners only)"
            )


@audit.records_denials("token.create")
def create_token(principal, user, *, name: str, requested: list[str], expires_at: datetime | None = None):
    """Create an API token; return (token, raw value). The raw value is shown once and never stored."""
    _require_token_management(principal, user)
    name = (name or "").strip()
    if not name or len(name) > TOKEN_NAME_MAX_LENGTH:
        raise InvalidInput(f"--name: give the token a name of 1 to {TOKEN_NAME_MAX_LENGTH} characters.", field="name")
    if not requested:
        raise InvalidInput(f"--scope: give at least one scope; scopes are {', '.join(scopes.ALL_SCOPES)}.",
                           field="scope")
    try:
        requested = scopes.validate_scopes(requested)
    except ValueError as error:
        raise InvalidInput(f"--scope: {error}", field="scope") from None
    role = role_of(user)
    beyond_role = sorted(set(requested) - scopes.ROLE_SCOPES[role])
    if beyond_role:
        raise InvalidInput(
            f"--scope: {user.username} is {role}, and that role lacks {', '.join(beyond_role)}; "
            "a token can only carry scopes of its user's role.",
            field="scope",
        )
    beyond_principal = sorted(set(requested) - principal.scopes)
    if beyond_principal:
        raise ScopeDenied(beyond_principal[0], principal.scopes, f"a token carrying {', '.join(beyond_principal)}")
    if expires_at is not None and expires_at <= timezone.now():
        raise InvalidInput(f"--expires: {expires_at.isoformat()} is in the past; give a future time.",
                           field="expires_at")

    raw = APIToken.generate()
    with transaction.atomic():
        if APIToken.objects.filter(user=user, name=name).exists():
            raise Conflict(
                f"{user.username} already has a token named {name!r}; choose another name or revoke it first."
            )
        try:
            with transaction.atomic():
                token = APIToken.objects.create(
                    user=user, name=name, prefix=raw[:12], token_hash=hash_token(raw), scopes=requested,
                    expires_at=expires_at,
                )
        except IntegrityError:
            raise Conflict(f"{user.username} already has a token named {name!r}; choose another name.") from None
        audit.record(principal, "token.create", token, scope=scopes.TOKENS_MANAGE,
                     target_type="apitoken", target_label=f"token {name} of {user.username}",
                     diff={"user": user.username, "name": name, "scopes": requested,
                           "expires_at": expires_at.isoformat() if expires_at else None})
    logger.info("token=%s created for user=%s", token.pk, user.pk)
    return token, raw


@audit.records_denials("token.revoke")
def revoke_token(principal, token: APIToken) -> APIToken:
    _require_token_management(principal, token.user)
    with transaction.atomic():
        # A conditional update, so two revocations record one entry.
        revoked = APIToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
        if not revoked:
            raise Conflict(f"Token {token.name!r} of {token.user.username} is already revoked.")
        token.refresh_from_db()
        audit.record(principal, "token.revoke", token, scope=scopes.TOKENS_MANAGE,
                     target_type="apitoken", target_label=f"token {token.name} of {token.user.username}",
                     diff={"user": token.user.username, "name": token.name})
    logger.info("token=%s revoked", token.pk)
    return token

