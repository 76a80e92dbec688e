"""The ``distmatch`` command.

Each subcommand is a pair: ``add_<name>(subparsers)`` declares its flags, ``run_<name>(args)`` does
the work and returns an exit status. Bad input raises :class:`UsageError`, ``ValueError`` or
``TypeError``; :func:`main` turns them into one line on stderr and exit status 2, never a traceback.
A run stopped by a signal (``TrainingInterrupted``, after its checkpoint) exits 130 and a run whose
loss diverged (``NonFiniteLossError``) 1, also in one line, unless the command reports them itself.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from .. import __version__
from ..runs import NonFiniteLossError, TrainingInterrupted
from ._common import UsageError
from ._distances import COMMANDS as DISTANCE_COMMANDS
from ._evaluate import COMMANDS as EVALUATE_COMMANDS
from ._fit import COMMANDS as FIT_COMMANDS
from ._latent import COMMANDS as LATENT_COMMANDS
from ._reproduce import COMMANDS as REPRODUCE_COMMANDS
from ._sketch import COMMANDS as SKETCH_COMMANDS
from ._sketch import SKETCH_ACTIONS
from ._train import COMMANDS as TRAIN_COMMANDS

__all__ = ["COMMANDS", "build_parser", "main"]


# ------------------------------------------------------------------------------------------- main

COMMANDS = {
    **TRAIN_COMMANDS,
    **EVALUATE_COMMANDS,
    **SKETCH_COMMANDS,
    **FIT_COMMANDS,
    **REPRODUCE_COMMANDS,
    **LATENT_COMMANDS,
    **DISTANCE_COMMANDS,
}


class _Parser(argparse.ArgumentParser):
    """argparse's parser, whose refusals (an unknown flag, a value of the wrong type) are one line
    on stderr with exit status 2, as every other bad input is, pointing at ``--help`` instead of
    printing the whole usage."""

    def error(self, message: str):
        name = _typed(self.prog)
        self.exit(2, f"{name}: error: {message} (see {name} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="distmatch",
        description=(
            "Distribution-matching generative models with little memory and data access: "
            "moving-window autoencoders and compressive learning from sketches."
        ),
    )
    parser.add_argument("--version", action="version", version=f"distmatch {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more detail")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for add, _ in COMMANDS.values():
        add(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line ``argv`` (default: ``sys.argv[1:]``) and returns the exit status."""
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    first = next((i for i, arg in enumerate(argv) if not arg.startswith("-")), len(argv))
    action = argv[first + 1] if first + 1 < len(argv) else None
    if argv[first : first + 1] == ["sketch"] and action in SKETCH_ACTIONS:
        # "sketch merge" is the command sketch-merge, after global flags such as -v too
        argv = [*argv[:first], SKETCH_ACTIONS[argv[first + 1]], *argv[first + 2 :]]
    args, extra = parser.parse_known_args(argv)
    if extra:  # named by the command they were given to, as its other refusals are
        words = ["distmatch", args.command, getattr(args, "experiment", None)]  # reproduce mow
        _Parser(prog=" ".join(w for w in words if w)).error(
            f"unrecognized arguments: {' '.join(extra)}"
        )
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s: %(message)s"
    )
    if args.command is None:
        parser.print_help()
        return 0
    _, run = COMMANDS[args.command]
    try:
        return run(args)
    except BrokenPipeError:
        # The reader of stdout went away (``distmatch train | head -1``): the work is done, and
        # nothing is left to say; stdout goes to /dev/null so that the exit does not fail too.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (UsageError, ValueError, TypeError, OSError) as err:
        if args.verbose:
            raise
        if os.environ.get("RANK", "0") == "0":  # under torchrun, one line, not one per rank
            print(f"distmatch {_typed(args.command)}: error: {err}", file=sys.stderr)
        return 2
    except TrainingInterrupted as err:  # commands with their own resume flags say more
        if os.environ.get("RANK", "0") == "0":
            print(f"distmatch {args.command}: {err}; the same command resumes it", file=sys.stderr)
        return 130
    except NonFiniteLossError as err:
        if os.environ.get("RANK", "0") == "0":
            print(f"distmatch {args.command}: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"distmatch {args.command}: interrupted", file=sys.stderr)
        return 130


def _typed(text: str) -> str:
    """A command's name as typed: ``sketch merge`` for the parser's ``sketch-merge``."""
    for action, command in SKETCH_ACTIONS.items():
        text = text.replace(command, f"sketch {action}")
    return text
