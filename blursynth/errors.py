"""The one exception type for mistakes a user can make (bad file, bad option).

The CLI turns it into a one-line message and a non-zero exit; library callers
catch it like any other exception. Programming errors stay ordinary exceptions
so that they keep their traceback.
"""


class BlursynthError(Exception):
    """A user-caused problem. The message names the file or option and what to do."""


class BadSourceError(BlursynthError):
    """A source (clip, frame, panorama) cannot be used.

    ``source`` is the clip/panorama id so that ``--skip-bad`` can list it.
    """

    def __init__(self, source: str, reason: str):
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason

    def __reduce__(self):
        # Rebuilt from (source, reason) when it crosses a process boundary (a
        # worker's error reaches the parent as the same one-line error).
        return type(self), (self.source, self.reason)


class BlursynthWarning(UserWarning):
    """Something a user should know that does not stop the run (a fallback, a doubtful
    setting). The CLI prints it as one line; library callers see an ordinary warning.
    The message starts with ``note:`` or ``warning:``."""


def note(message: str) -> None:
    """Emit ``message`` as a :class:`BlursynthWarning` (shown once per message)."""
    import warnings

    warnings.warn(message, BlursynthWarning, stacklevel=2)
