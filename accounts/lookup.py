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
    """The project or service a grant names. Granting needs members:manage, which only unrestricted roles hold."""
    from services.models import Project, Service

    if service_name:
        services = Service.objects.select_related("project").filter(name=service_name)
        if project_name:
            services = services.filter(project__name=project_name)
        found = list(services[:20])
        if not found:
            where = f" in project {project_name!r}" if project_name else ""
            raise NotFound(f"Service {service_name!r} not found{where}; list services with `daoflow services`.")
        if len(found) > 1:
            raise InvalidInput(
                f"Service name {service_name!r} exists in several projects "
                f"({', '.join(s.project.name for s in found)}); choose one with --project.",
                field="project",
            )
        return found[0]
    if project_name:
        project = Project.objects.filter(name=project_name).first()
        if project is None:
            raise NotFound(f"Project {project_name!r} not found; list projects with `daoflow project list`.")
        return project
    raise InvalidInput("Name what the grant is on: --project P, or --service S (with --project P if needed).",
                       field="project")
