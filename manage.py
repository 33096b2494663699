#!/usr/bin/env python
import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "daoflow.settings")
    # Commands print their own results; the log shows only warnings and errors
    # unless DAOFLOW_LOG_LEVEL sets a lower level.
    os.environ.setdefault("DAOFLOW_LOG_LEVEL", "WARNING")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
