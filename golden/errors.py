"""Errors a user can cause by what they ask for (unknown network or split, QF out of range, bad file).

The message names the bad value and what is allowed; the CLI prints it as one line with exit status 2.
Defined in golden (the lowest layer) so every package can raise it.
"""


class UserError(ValueError):
    """A bad value given by the user: the message names the value and what is allowed."""
