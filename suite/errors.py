"""Errors the CLI turns into one line on stderr and exit code 2."""


class UsageError(Exception):
    """Bad input: an unknown name, a malformed file, an unreachable budget."""


class BudgetError(UsageError):
    """No setting of a method's size knob reaches the requested budget."""


class Diverged(RuntimeError):
    """The loss became NaN or infinite."""
