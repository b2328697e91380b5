"""The one exception for input a user can fix: it is printed as one line, without a traceback."""


class InvalidInput(ValueError):
    """A bad config value, data file or checkpoint; the message names it and says what is expected."""
