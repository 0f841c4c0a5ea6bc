"""The one exception type users see: a clear, one-line statement of what is wrong with their input."""


class CdinnError(ValueError):
    """Bad input or configuration. The message is one line and names the problem (and the file, if any)."""
