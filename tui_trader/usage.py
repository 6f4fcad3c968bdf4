"""The error every command raises for bad input (printed as it is, exit code 2): its own module
so that the commands' modules need not import each other."""


class UsageError(Exception):
    """Bad input from the user: printed as it is, exit code 2."""
