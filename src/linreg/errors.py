"""What a user is told when something fails: one line, without a traceback.

`InvalidInput` is input the user can fix (a config value, a data file, a checkpoint); `fault_line` words a
failed write (no space left, a read-only folder), which the user fixes outside the project.
"""


class InvalidInput(ValueError):
    """A bad config value, data file or checkpoint; the message names it and says what is expected."""


def fault_line(error: OSError) -> str:
    """A failed write as one line: the path, the system's reason, what is needed."""
    return f"{error.filename or 'output'}: {error.strerror or error}; expected a writable folder with free space"
