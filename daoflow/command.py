"""The base of every `daoflow` command: JSON output, exit codes, confirmation and the acting principal.

Exit codes: 0 success, 1 error, 2 permission denied, 3 dry run completed.
With --json, standard output carries exactly one JSON document with "ok".
"""

import json
import os
import sys
from argparse import ArgumentParser

from django.core.management.base import BaseCommand, CommandParser
from django.db import DataError
from django.core.serializers.json import DjangoJSONEncoder

from .errors import ConfirmationRequired, DaoflowError, InvalidInput, ScopeDenied

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_PERMISSION_DENIED = 2
EXIT_DRY_RUN = 3


class UsageError(DaoflowError):
    code = "INVALID_INPUT"


class DaoflowParser(CommandParser):
    """Turn argparse usage errors into INVALID_INPUT errors, so --json callers get JSON."""

    def error(self, message):
        raise UsageError(f"{self.prog}: {message}. Run `{self.prog} --help` for the options.")


class DaoflowCommand(BaseCommand):
    # Commands that change something get --yes and --dry-run.
    mutating = False
    # Commands with subcommands put the common options on each subcommand,
    # because argparse lets a subparser's defaults overwrite its parent's.
    has_subcommands = False
    requires_system_checks = []
    # Django's own options still work but stay out of `--help`.
    suppressed_base_arguments = {
        "--version", "--verbosity", "--settings", "--pythonpath", "--traceback",
        "--no-color", "--force-color", "--skip-checks",
    }

    def add_arguments(self, parser: ArgumentParser) -> None:
        # Django builds the parser; switching its class here, before any
        # subcommand parser exists, makes every usage error a DaoflowError.
        parser.__class__ = DaoflowParser
        if not self.has_subcommands:
            self.add_common_arguments(parser)
        self.add_command_arguments(parser)

    def add_subcommand(self, subparsers, name: str, help_text: str, *, mutating: bool) -> ArgumentParser:
        parser = subparsers.add_parser(name, help=help_text, description=help_text)
        parser.add_argument("--json", action="store_true", help="Print one JSON document with an \"ok\" field.")
        parser.add_argument("--token", help="Act as the owner of this API token (default: $DAOFLOW_TOKEN, "
                                            "else the local system operator).")
        if mutating:
            self.add_confirmation_arguments(parser)
        return parser

    def add_command_arguments(self, parser: ArgumentParser) -> None:
        pass

    def add_common_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--json", action="store_true", help="Print one JSON document with an \"ok\" field.")
        parser.add_argument("--token", help="Act as the owner of this API token (default: $DAOFLOW_TOKEN, "
                                            "else the local system operator).")
        if self.mutating:
            self.add_confirmation_arguments(parser)

    @staticmethod
    def add_confirmation_arguments(parser: ArgumentParser) -> None:
        parser.add_argument("--yes", action="store_true", help="Confirm the change without a prompt.")
        parser.add_argument("--dry-run", action="store_true",
                            help="Validate and show what would change, write nothing, exit 3.")

    def run_from_argv(self, argv):
        self._called_from_command_line = True
        self._json = "--json" in argv
        try:
            super().run_from_argv(argv)
        except DaoflowError as error:
            self.fail(error)

    def execute(self, *args, **options):
        self._json = bool(options.get("json"))
        try:
            return super().execute(*args, **options)
        except DaoflowError as error:
            self.fail(error)

    def handle(self, *args, **options):
        from accounts.authentication import Unauthenticated, principal_from_token

        self._json = options.get("json", False)
        token = options.get("token")
        if token is None:
            token = os.environ.get("DAOFLOW_TOKEN")
        if token is not None and not token.strip():
            # An empty token is a script whose token variable is unset; acting
            # as the all-powerful system operator then would be a surprise.
            source = "--token" if options.get("token") is not None else "DAOFLOW_TOKEN"
            raise Unauthenticated(
                f"{source} is empty; pass a token (dfl_...), or unset DAOFLOW_TOKEN and omit --token "
                "to act as the local system operator."
            )
        principal = principal_from_token(token or "")
        self._principal = principal
        self._attempted_action = ".".join(
            part for part in (self.__module__.rsplit(".", 1)[-1], options.get("action")) if part
        )
        try:
            data = self.run(principal, **options)
        except DataError:
            # A backstop for input that passed validation but not the database.
            raise InvalidInput(
                "A value is too long or contains characters that cannot be stored; shorten it or remove "
                "control characters."
            ) from None
        self.succeed(data)

    def run(self, principal, **options) -> dict:
        raise NotImplementedError

    # -- output -------------------------------------------------------------

    def emit_json(self, document: dict) -> None:
        self.stdout.write(json.dumps(document, cls=DjangoJSONEncoder, indent=2, ensure_ascii=False))

    def succeed(self, data: dict, exit_code: int = EXIT_OK) -> None:
        if self._json:
            self.emit_json({"ok": True, "data": data})
        else:
            self.render(data)
        if exit_code != EXIT_OK:
            raise SystemExit(exit_code)

    def fail(self, error: DaoflowError) -> None:
        if isinstance(error, ScopeDenied):
            from accounts.audit import record_denial

            # Written here, after the command's transactions have rolled back, so the entry stays.
            record_denial(getattr(self, "_principal", None), error, getattr(self, "_attempted_action", ""))
        if self._json:
            self.emit_json(error.as_dict())
        else:
            self.stderr.write(f"Error: {error.message}")
        raise SystemExit(error.exit_code)

    def render(self, data: dict) -> None:
        """Human-readable output; commands override it."""
        self.stdout.write(json.dumps(data, cls=DjangoJSONEncoder, indent=2, ensure_ascii=False))

    # -- confirmation -------------------------------------------------------

    def confirm(self, options: dict, what: str) -> None:
        """Require --yes, or an interactive 'y', before a change is written."""
        if options.get("yes"):
            return
        if not self._json and sys.stdin.isatty() and sys.stdout.isatty():
            answer = input(f"{what}. Proceed? [y/N] ").strip().lower()
            if answer in ("y", "yes"):
                return
            raise DaoflowError("Cancelled: nothing was changed.")
        raise ConfirmationRequired(self._command_name())

    def _command_name(self) -> str:
        return "daoflow " + self.__module__.rsplit(".", 1)[-1]

    def dry_run_done(self, data: dict) -> None:
        self.succeed({"dry_run": True, **data}, exit_code=EXIT_DRY_RUN)



def read_file_argument(path: str, flag: str) -> str:
    """Read a file named on the command line, exactly, as text ('-' is standard input)."""
    try:
        if path == "-":
            return sys.stdin.read()
        with open(path, encoding="utf-8", newline="") as handle:
            return handle.read()
    except FileNotFoundError:
        raise InvalidInput(f"{flag}: file {path!r} does not exist.", field=flag) from None
    except UnicodeDecodeError:
        raise InvalidInput(f"{flag}: file {path!r} is not UTF-8 text.", field=flag) from None
    except OSError as error:
        raise InvalidInput(f"{flag}: cannot read {path!r}: {error.strerror}.", field=flag) from None
