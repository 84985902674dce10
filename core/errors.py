"""User-facing errors: one line that names the problem and the fix."""


class LearngeneError(Exception):
    """A problem the user can fix; the CLI prints it as one line and exits with code 2."""
