"""The one exception type that reaches the user as a one-line message."""


class UserError(Exception):
    """Bad input that the user can fix: the message says what is wrong and how to fix it."""
