"""Finding the user, token, project or service that a command or request names for account changes."""

from django.contrib.auth import get_user_model

from daoflow.errors import InvalidInput, NotFound

from .models import APIToken


def find_user(username: str):
    user = get_user_model().objects.select_related("membership").filter(username=username).first()
    if user is None:
        raise NotFound(f"User {username!r} not found; list users with `daoflow user list`.")
    return user


def find_token(user, name: str) -> APIToken:
    token = APIToken.objects.select_related("user").filter(user=user, name=name).first()
    if token is None:
        raise NotFound(
            f"{user.username} has no token named {name!r}; list tokens with `daoflow token list --user {user.username}`."
        )
    return token


def find_grant_target(project_name: str | None, service_name: str | None):
    """Find the project or service a grant names.

    The lookup is not narrowed by the caller's read scope: granting needs
    members:manage, which only unrestricted roles have, and a token limited
    to members:manage must still find what it grants on.
    """
    from services.lookup import find_project, find_service

    from .principal import SYSTEM

    if service_name:
        return find_service(SYSTEM, service_name, project_name)
    if project_name:
        return find_project(SYSTEM, project_name)
    raise InvalidInput("Name what the grant is on: --project P, or --service S (with --project P if needed).",
                       field="project")
