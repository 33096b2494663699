"""The `daoflow` console script: `daoflow <command>` runs `manage.py <command>`."""

import os
import sys

# The apps whose commands `daoflow help` lists. Django's own commands
# (migrate, flush, shell, ...) still run, but a newcomer's command list
# should not offer `flush` beside `deploy`.
PRODUCT_APPS = ("accounts", "services", "deployments")
HIDDEN_PRODUCT_COMMANDS = {"ensure_admin"}


def product_help_text(prog_name: str) -> str:
    from django.core.management import get_commands

    names = sorted(
        name for name, app in get_commands().items()
        if app in PRODUCT_APPS and name not in HIDDEN_PRODUCT_COMMANDS and not name.startswith("_")
    )
    lines = [
        f"Usage: {prog_name} <command> [options]   ({prog_name} <command> --help for a command's options)",
        "",
        "Commands:",
        *(f"    {name}" for name in names),
        "",
        "Each command listed takes --json. Django's own commands, such as migrate, also run.",
    ]
    return "\n".join(lines)


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "daoflow.settings")
    # Commands print their own results; the log shows only warnings and errors
    # unless DAOFLOW_LOG_LEVEL sets a lower level.
    os.environ.setdefault("DAOFLOW_LOG_LEVEL", "WARNING")
    from django.core.management import ManagementUtility

    class Utility(ManagementUtility):
        def main_help_text(self, commands_only=False):
            if commands_only or self.settings_exception is not None:
                return super().main_help_text(commands_only)
            return product_help_text(self.prog_name)

    try:
        Utility(["daoflow", *sys.argv[1:]]).execute()
    except BrokenPipeError:
        # The reader went away (`daoflow logs ... | head`). Point stdout at
        # /dev/null so the interpreter's final flush does not fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(1)


if __name__ == "__main__":
    main()
