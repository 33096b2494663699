"""Finding the object a command or request names, through the principal's read scope."""

from accounts import scopes
from daoflow.errors import InvalidInput, NotFound

from .models import Environment, Project, Server, Service


def find_project(principal, name: str) -> Project:
    project = Project.objects.for_scope(principal, scopes.SERVICE_READ).filter(name=name).first()
    if project is None:
        raise NotFound(f"Project {name!r} not found; list projects with `daoflow project list`.")
    return project


def find_environment(project: Project, name: str | None) -> Environment:
    environments = list(project.environments.all())
    if name:
        for environment in environments:
            if environment.name == name:
                return environment
        raise NotFound(
            f"Project {project.name!r} has no environment {name!r}; it has "
            f"{', '.join(e.name for e in environments) or 'none'}."
        )
    if len(environments) == 1:
        return environments[0]
    raise InvalidInput(
        f"Project {project.name!r} has several environments ({', '.join(e.name for e in environments)}); "
        "choose one with --environment.",
        field="environment",
    )


def find_service(principal, name: str, project: str | None = None, scope: str = scopes.SERVICE_READ) -> Service:
    candidates = Service.objects.for_scope(principal, scope).filter(name=name).select_related(
        "project", "environment__default_server", "target_server"
    )
    if project:
        candidates = candidates.filter(project__name=project)
    found = list(candidates[:20])
    if not found:
        where = f" in project {project!r}" if project else ""
        raise NotFound(f"Service {name!r} not found{where}; list services with `daoflow services`.")
    if len(found) > 1:
        raise InvalidInput(
            f"Service name {name!r} exists in several projects ({', '.join(s.project.name for s in found)}); "
            "choose one with --project.",
            field="project",
        )
    return found[0]


def find_server(principal, name: str) -> Server:
    if not principal.has_scope(scopes.SERVER_READ):
        from daoflow.errors import ScopeDenied

        raise ScopeDenied(scopes.SERVER_READ, principal.scopes)
    server = Server.objects.filter(name=name).first()
    if server is None:
        raise NotFound(f"Server {name!r} not found; list servers with `daoflow server list`.")
    return server
