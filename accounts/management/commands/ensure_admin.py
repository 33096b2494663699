"""Create the first admin user on a new installation, with a generated password."""

import os
import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from accounts.models import Membership
from accounts.scopes import OWNER

PASSWORD_FILE = "admin-password"


class Command(BaseCommand):
    help = "Create the user 'admin' (role owner) if no user exists yet; its password goes to DATA_DIR/admin-password."

    def handle(self, *args, **options):
        User = get_user_model()
        path = Path(settings.DATA_DIR) / PASSWORD_FILE
        # django-guardian's migrations create its anonymous user; it does not count.
        anonymous = getattr(settings, "ANONYMOUS_USER_NAME", "AnonymousUser")
        if User.objects.exclude(username=anonymous).exists():
            if path.exists():
                self.stdout.write(f"Admin login: user 'admin', password in {path}")
            return
        password = secrets.token_urlsafe(18)
        # Staff with the owner role rather than a Django superuser: the role
        # decides what the user may do, and a later role change takes effect.
        user = User.objects.create_user("admin", "", password, is_staff=True)
        Membership.objects.create(user=user, role=OWNER)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(password + "\n")
        self.stdout.write(f"Created the admin user 'admin'; its password is in {path} (mode 0600).")
