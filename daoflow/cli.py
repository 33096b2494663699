"""The `daoflow` console script: `daoflow <command>` runs `manage.py <command>`."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "daoflow.settings")
    # Commands print their own results; the log shows only warnings and errors
    # unless DAOFLOW_LOG_LEVEL sets a lower level.
    os.environ.setdefault("DAOFLOW_LOG_LEVEL", "WARNING")
    from django.core.management import execute_from_command_line

    try:
        execute_from_command_line(["daoflow", *sys.argv[1:]])
    except BrokenPipeError:
        # The reader went away (`daoflow logs ... | head`). Point stdout at
        # /dev/null so the interpreter's final flush does not fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(1)


if __name__ == "__main__":
    main()
