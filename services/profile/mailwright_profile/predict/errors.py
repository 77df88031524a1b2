"""Errors raised by the predictive models.

Every error says what is wrong in the words of the data (which field, how many rows, the
first offending row) so that a CLI can print it as one line and an API can map it to
INVALID_ARGUMENT or FAILED_PRECONDITION without parsing.
"""

from __future__ import annotations


class PredictError(ValueError):
    """Base class: the model cannot give an answer for this input."""


class DataError(PredictError):
    """The input data are malformed or cannot identify the model (names the field)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.reason = message


class ConvergenceError(PredictError):
    """A maximum-likelihood fit did not converge; no parameters are returned."""

    def __init__(self, model: str, message: str) -> None:
        super().__init__(f"{model} fit did not converge: {message}")
        self.model = model
