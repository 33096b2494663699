"""API token authentication, shared by DRF and the command line."""

import logging

from django.utils import timezone
from rest_framework import authentication, exceptions

from daoflow.errors import DaoflowError

from .models import TOKEN_PREFIX, APIToken, hash_token
from .principal import SYSTEM, Principal, principal_for

logger = logging.getLogger(__name__)

# last_used_at is written at most this often per token, so reads stay cheap.
LAST_USED_RESOLUTION_SECONDS = 60


class Unauthenticated(DaoflowError):
    code = "UNAUTHENTICATED"
    http_status = 401


def find_token(raw: str) -> APIToken | None:
    if not raw.startswith(TOKEN_PREFIX):
        return None
    token = APIToken.objects.active().select_related("user__membership").filter(token_hash=hash_token(raw)).first()
    if token is None or not token.user.is_active:
        return None
    now = timezone.now()
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > LAST_USED_RESOLUTION_SECONDS:
        APIToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token


def principal_from_token(raw: str) -> Principal:
    """Return the command line's principal: the token's, or the local system operator without one."""
    if not raw:
        return SYSTEM
    token = find_token(raw.strip())
    if token is None:
        raise Unauthenticated(
            "The API token is invalid, expired or revoked; create a new one with `daoflow token create`."
        )
    return principal_for(token.user, token)


class APITokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer dfl_...` (or `Token dfl_...`)."""

    keywords = ("bearer", "token")

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].decode(errors="replace").lower() not in self.keywords:
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("The Authorization header must be 'Bearer <token>'.")
        token = find_token(header[1].decode(errors="replace"))
        if token is None:
            raise exceptions.AuthenticationFailed("The API token is invalid, expired or revoked.")
        return token.user, token

    def authenticate_header(self, request):
        return "Bearer"


def principal_of_request(request) -> Principal:
    token = request.auth if isinstance(request.auth, APIToken) else None
    return principal_for(request.user, token)
