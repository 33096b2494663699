"""The API tests' builders and fixtures, shared with the permission tests."""

from tests.api.conftest import full_world, owner, world  # noqa: F401
