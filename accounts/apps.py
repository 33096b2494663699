from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts and audit"

    def ready(self):
        # Registers the token scheme with drf-spectacular.
        from . import schema  # noqa: F401
