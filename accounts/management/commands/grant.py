from accounts import actions

from ._grants import GrantCommand


class Command(GrantCommand):
    help = "Grant a user scopes on a project (and its services) or on one service."
    verb = "grant"

    def change(self, principal, user, target, requested):
        return actions.grant(principal, user, target, requested)
