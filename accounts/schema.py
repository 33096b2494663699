"""The API token scheme in the OpenAPI schema, so the docs page offers a token field."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class APITokenScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.APITokenAuthentication"
    name = "apiToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API token (dfl_...) from `daoflow token create`, sent as 'Authorization: Bearer dfl_...'.",
        }
