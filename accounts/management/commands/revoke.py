from accounts import actions

from ._grants import GrantCommand


class Command(GrantCommand):
    help = "Remove scopes granted to a user on a project or a service."
    verb = "revoke"

    def change(self, principal, user, target, requested):
        return actions.revoke(principal, user, target, requested)
