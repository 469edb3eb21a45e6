"""The Dask cluster of ``--backend dask``: connect within a deadline, one line when it goes away.

``distributed.Client(address, timeout=...)`` does not bound every step of the
connection: its handshake reads the scheduler's first message without a
timeout, so an address that accepts the TCP connection but never speaks Dask
hung for over 200 s (issue 19). :func:`connect` bounds the whole connection by
Dask's own connect timeout (``distributed.comm.timeouts.connect``, 30 s unless
the Dask configuration or ``DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT`` says
otherwise): a refused or unresolvable address fails at once, a silent one when
the time is up, a malformed one (``zzz://??``) before anything is sent; each
in one line naming ``--scheduler``. :func:`cluster_lost` recognizes the errors
of a cluster that disappears in the middle of a run.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import socket
import time
from urllib.parse import urlsplit

from blursynth.errors import BlursynthError

__all__ = ["LOST", "cluster_lost", "connect", "connect_timeout", "session"]

# What a run whose cluster disappeared says (the dataset stays resumable).
LOST = "the Dask cluster went away; re-run to resume"
# The scheduler port Dask listens on when an address gives none.
DEFAULT_PORT = 8786


def connect_timeout() -> float:
    """Seconds a connection to ``--scheduler`` may take: Dask's ``distributed.comm.timeouts.connect``."""
    import dask
    from dask.utils import parse_timedelta

    return float(parse_timedelta(dask.config.get("distributed.comm.timeouts.connect"), default="seconds"))


def connect(address: str):
    """A ``distributed.Client`` of the scheduler at ``address``, or one line within the deadline.

    Three steps share one deadline (:func:`connect_timeout`): a plain TCP
    connection (a refused port or an unknown host fails at once), Dask's
    handshake, bounded here because ``distributed`` leaves it unbounded, and
    the client itself.

    Parameters
    ----------
    address : str
        ``--scheduler``, e.g. ``tcp://host:8786``.

    Returns
    -------
    distributed.Client

    Raises
    ------
    BlursynthError
        Naming ``--scheduler``: a malformed address, nothing listening, or no
        Dask scheduler answering in time.
    """
    try:
        from distributed import Client
    except ImportError:  # pragma: no cover - distributed is a dependency
        raise BlursynthError("--backend dask needs the 'distributed' package") from None
    timeout = connect_timeout()
    deadline = time.monotonic() + timeout
    _check_listening(address, timeout)
    _handshake(address, max(0.1, deadline - time.monotonic()), timeout)
    try:
        return Client(address, timeout=max(0.1, deadline - time.monotonic()))
    except ValueError as exc:  # pragma: no cover - the handshake parsed the address already
        raise BlursynthError(f"--scheduler {address}: not a Dask scheduler address ({exc})") from None
    except (OSError, TimeoutError) as exc:
        raise BlursynthError(f"--scheduler {address}: cannot connect ({exc})") from None


@contextlib.contextmanager
def session(address: str):
    """Run joblib on the cluster at ``address`` inside the block.

    Connects with :func:`connect`, makes it joblib's backend, and closes the
    client on the way out. ``distributed``'s own log lines stay quiet in this
    process meanwhile: a lost cluster made the client log a traceback of its
    failed reconnection while it closed, above the one line that says what
    happened (:data:`LOST`).
    """
    import joblib

    client = connect(address)
    # distributed gives several of its loggers their own level and handler
    loggers = [logger for name, logger in logging.Logger.manager.loggerDict.items()
               if isinstance(logger, logging.Logger) and (name == "distributed" or name.startswith("distributed."))]
    disabled = [logger.disabled for logger in loggers]
    for logger in loggers:
        logger.disabled = True
    try:
        with client, joblib.parallel_config(backend="dask"):
            yield client
    finally:
        for logger, was in zip(loggers, disabled):
            logger.disabled = was


def _check_listening(address: str, timeout: float) -> None:
    """Fail at once when nothing listens at a tcp:// or tls:// address (other schemes: Dask checks)."""
    try:
        parts = urlsplit(address if "://" in address else f"tcp://{address}")
        host, port = parts.hostname, parts.port
    except ValueError as exc:  # a port that is not a number
        raise BlursynthError(f"--scheduler {address}: not a Dask scheduler address ({exc}); "
                             "e.g. tcp://host:8786") from None
    if parts.scheme not in ("tcp", "tls") or not host:
        return
    try:
        socket.create_connection((host, port or DEFAULT_PORT), timeout=timeout).close()
    except OSError as exc:
        raise BlursynthError(f"--scheduler {address}: cannot connect ({exc.strerror or exc})") from None


def _handshake(address: str, seconds: float, timeout: float) -> None:
    """Open and close one Dask connection to ``address`` within ``seconds``.

    Runs on an event loop of its own in a helper thread, so that it works the
    same when the caller already runs an event loop (a notebook).
    """
    from distributed.comm import connect as dask_connect

    async def hello():
        comm = await asyncio.wait_for(dask_connect(address, timeout=seconds), seconds)
        await comm.close()

    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="blursynth-connect") as pool:
        future = pool.submit(asyncio.run, hello())
        try:
            future.result()
        except ValueError as exc:  # an unknown scheme, no port, ...
            raise BlursynthError(f"--scheduler {address}: not a Dask scheduler address ({exc}); "
                                 "e.g. tcp://host:8786") from None
        except (TimeoutError, asyncio.TimeoutError, OSError) as exc:
            why = "" if isinstance(exc, (TimeoutError, asyncio.TimeoutError)) and not str(exc) else f" ({exc})"
            raise BlursynthError(f"--scheduler {address}: no Dask scheduler answered within {timeout:g} s{why}; "
                                 "check the address (Dask's distributed.comm.timeouts.connect sets the wait)"
                                 ) from None


def cluster_lost(exc: BaseException) -> bool:
    """Whether ``exc``, raised while results come back, means that the cluster went away.

    A scheduler that stops cancels the client's futures (``FutureCancelledError``,
    a ``CancelledError``) or closes its connection (``CommClosedError``, an
    ``OSError``). Errors of a task itself reach the caller as they were raised
    in the worker and are not these.
    """
    from distributed.comm.core import CommClosedError

    return isinstance(exc, (concurrent.futures.CancelledError, asyncio.CancelledError, CommClosedError))
