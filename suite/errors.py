"""Errors the CLI turns into one line on stderr and exit code 2."""

import errno


class UsageError(Exception):
    """Bad input: an unknown name, a malformed file, an unreachable budget."""


class BudgetError(UsageError):
    """No setting of a method's size knob reaches the requested budget."""


class Diverged(RuntimeError):
    """The loss became NaN or infinite."""


# What to do about an operating-system error on a path rpg-bench reads or writes.
_ADVICE = {
    errno.ENOENT: "it does not exist, or its folder cannot be made there: check the path",
    errno.EACCES: "permission denied: choose a path you may write to, or change its permissions",
    errno.EPERM: "not permitted: choose another path",
    errno.EROFS: "the file system is read-only: choose a writable --out",
    errno.ENOTDIR: "a file stands where a folder is expected: choose another path, or move the file",
    errno.EISDIR: "a folder stands where a file is expected: name a file",
    errno.ENAMETOOLONG: "the path (or one of its names) is too long: choose a shorter one",
    errno.ENOSPC: "no space left on the device: free some, then run the same command again "
    "(finished cells are recorded and kept; an unfinished one resumes from its checkpoint)",
    errno.EDQUOT: "the disk quota is exhausted: free some, then run the same command again",
    errno.EEXIST: "something already exists there: choose another path",
}
# Errors of the machine, not of a cell: a cell that meets one stops the run (the rerun
# resumes it) rather than being recorded as the method's failure.
ENVIRONMENT = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})


def describe(error: OSError) -> str:
    """One line: the path, what went wrong, and what to do."""
    path = error.filename if error.filename is not None else "a file"
    other = f" -> {error.filename2}" if getattr(error, "filename2", None) else ""
    what = error.strerror or type(error).__name__
    advice = _ADVICE.get(error.errno, "")
    return f"{path}{other}: {what}" + (f"; {advice}" if advice else "")


def naming(error: OSError, path) -> OSError:
    """``error`` with ``path`` as its file where the system left it out (a failed write to
    an open file does): so the one line says which file."""
    if error.filename is None:
        named = type(error)(error.errno, error.strerror, str(path))
        named.__cause__ = error
        return named
    return error
