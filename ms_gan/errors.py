"""The one exception type for user mistakes.

Anything raised as :class:`UserError` reaches the user as a single line
``ms-gan: error: <message>`` with exit code 2 and no traceback.
"""


class UserError(Exception):
    """A mistake the user can fix: bad flag, missing file, wrong checkpoint."""
