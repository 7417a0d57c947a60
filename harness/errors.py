class HarnessError(Exception):
    """An error caused by the user's input (a path, a name, a file): shown as one line, no traceback."""
