"""The ``distmatch`` command.

Each subcommand is a pair: ``add_<name>(subparsers)`` declares its flags, ``run_<name>(args)`` does
the work and returns an exit status. Bad input raises :class:`UsageError`, ``ValueError`` or
``TypeError``; :func:`main` turns them into one line on stderr and exit status 2, never a traceback.
Choices of flags are read from the registries they list.
"""

from ._common import UsageError
from ._main import COMMANDS, build_parser, main

__all__ = ["COMMANDS", "UsageError", "build_parser", "main"]
