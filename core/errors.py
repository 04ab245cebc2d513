"""Errors that describe what is wrong with the *user's* input, not torch internals."""


class IGInputError(ValueError):
    """Raised when inputs, baselines, targets or options given to igkit are unusable.

    The message always names the offending value and says what to do instead.
    """


class NonFiniteError(FloatingPointError):
    """Raised when the model produced NaN/Inf along the path; the message names the alpha."""
