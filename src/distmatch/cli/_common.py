"""What the command modules share."""


class UsageError(Exception):
    """Bad command-line input; reported in one line with exit status 2."""
