"""Errors and warnings that describe what is wrong with the *user's* input, not torch internals.

Every :class:`IgkitError` ends a command with one ``igkit: error: ...`` line and its
``exit_code``; inside a batch, an item's :class:`IGInputError` or
:class:`NonFiniteError` skips that item with the message as its reason.
"""

#: exit codes of every igkit command (documented in README.md, "Run contract")
EXIT_OK = 0
EXIT_SKIPPED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class IgkitError(Exception):
    """Base of the errors a user can fix; the message says what was wrong and what to do."""

    exit_code = EXIT_USAGE


class IGInputError(IgkitError, ValueError):
    """Raised when inputs, baselines, targets or options given to igkit are unusable.

    The message always names the offending value and says what to do instead.
    """


class InputFileError(IGInputError):
    """A file the user named cannot be read as asked (missing, wrong encoding, no such column)."""


class OutputError(IgkitError):
    """The output folder cannot be written, or holds another run's results."""


class ModelError(IgkitError):
    """A model or checkpoint cannot be loaded; the message names the file and what is wrong."""


class NonFiniteError(IgkitError, FloatingPointError):
    """Raised when the model produced NaN/Inf along the path; the message names the alpha."""


class Interrupted(IgkitError):
    """The user stopped a run (Ctrl-C); finished items are on disk and the run can be resumed."""

    exit_code = EXIT_INTERRUPTED


class IgkitWarning(UserWarning):
    """Something the user should know about a result (train mode, a large completeness error)."""
