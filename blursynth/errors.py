"""The one exception type for mistakes a user can make (bad file, bad option).

The CLI turns it into a one-line message and a non-zero exit; library callers
catch it like any other exception. Programming errors stay ordinary exceptions
so that they keep their traceback.

Every exception here survives :mod:`pickle`: an error raised in a worker
process (loky, Dask) reaches the parent as the same type with the same
message, so the CLI prints the same line whatever the number of workers.
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
        # Exception's default pickles ``args`` (the one message), which this
        # ``__init__`` cannot take back.
        return type(self), (self.source, self.reason)


class InterruptedRun(BlursynthError):
    """SIGTERM (or SIGINT) stopped a run; what is finished stays and a re-run resumes.

    ``signal_number`` is the signal that stopped it (the CLI exits with
    128 + it, as a shell does for a process killed by that signal).
    """

    def __init__(self, signal_number: int = 15):
        super().__init__("interrupted; re-run the same command to resume")
        self.signal_number = int(signal_number)

    def __reduce__(self):
        return type(self), (self.signal_number,)


class BlursynthWarning(UserWarning):
    """Something a user should know that does not stop the run (a fallback, a doubtful
    setting). The CLI prints it as one line; library callers see an ordinary warning.
    The message starts with ``note:`` or ``warning:``."""


def note(message: str) -> None:
    """Emit ``message`` as a :class:`BlursynthWarning` (shown once per message)."""
    import warnings

    warnings.warn(message, BlursynthWarning, stacklevel=2)


# torch's DataLoader re-raises an error of one of its worker processes as
# ``ExcType("Caught ExcType in DataLoader worker process N.\nOriginal Traceback
# ...\nmodule.ExcType: message")``, or as RuntimeError when ExcType cannot be
# rebuilt from that one string (BadSourceError).
_WORKER_PREFIX = "Caught "
_WORKER_MARK = " in DataLoader worker process "


def user_message(exc: BaseException) -> str | None:
    """The one-line message of a user error, or None for any other exception.

    A :class:`BlursynthError` gives its message; the same error raised in a
    torch DataLoader worker and re-raised by the DataLoader (see above) gives
    the original message, without the wrapper's traceback.
    """
    text = str(exc)
    first = text.split("\n", 1)[0]
    if first.startswith(_WORKER_PREFIX) and _WORKER_MARK in first:
        name = first[len(_WORKER_PREFIX):first.index(_WORKER_MARK)]
        if name not in {cls.__name__ for cls in _user_error_classes()}:
            return None
        last = [line for line in text.splitlines() if line.strip()][-1]
        return last.split(": ", 1)[1] if ": " in last else last
    return text if isinstance(exc, BlursynthError) else None


def _user_error_classes():
    seen, todo = [], [BlursynthError]
    while todo:
        cls = todo.pop()
        seen.append(cls)
        todo.extend(cls.__subclasses__())
    return seen
