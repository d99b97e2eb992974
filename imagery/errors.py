"""The project's one error for bad input data."""


class DataError(ValueError):
    """Bad input data: the message names the file, what is wrong and how to fix it."""
