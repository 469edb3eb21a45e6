"""When a training run stops, and what it says while it runs.

Between two steps the loop asks :class:`TrainControl`: it reads the flag that
Ctrl-C or SIGTERM set (:func:`blursynth.run.signals.stop_between_steps`, the one
signal handler), checks the time budget, and takes one vote across the DDP
ranks, so that every rank stops after the same step and writes the same
checkpoint. It also holds the progress bar and the one early line with the
speed and the time left. A loss that is not finite on any rank stops every
rank (:func:`check_finite`).
"""

from __future__ import annotations

import contextlib
import math
import signal
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

from blursynth.errors import BlursynthError, InterruptedRun
from blursynth.run.signals import stop_between_steps
from reference_models.runtime import Distributed
from reference_models.train_config import TrainConfig

__all__ = ["LONG_RUN_S", "Interrupted", "TrainControl", "check_finite"]

# Above this, the early progress line suggests --time-budget.
LONG_RUN_S = 3 * 3600


class Interrupted(InterruptedRun):
    """Training stopped by Ctrl-C or SIGTERM after writing a checkpoint.

    An :class:`~blursynth.errors.InterruptedRun` with its own message: the CLI
    prints it on one line and exits with 128 + the signal's number, as a shell
    does for a process that signal killed.
    """

    def __init__(self, message: str, signum: int = signal.SIGINT):
        BlursynthError.__init__(self, message)
        self.signal_number = int(signum)

    @property
    def signum(self) -> int:
        return self.signal_number

    def __reduce__(self):
        return (type(self), (str(self), self.signal_number))


def check_finite(env: Distributed, value: float, step: int, ckpt_step: int | None) -> None:
    """Stop every rank when the loss of ``step`` (0-based) is not finite on any of them.

    Parameters
    ----------
    env : Distributed
        The process group: all ranks vote, so all raise together.
    value : float
        This rank's loss.
    step : int
        The step being taken (0-based; the message counts from 1).
    ckpt_step : int or None
        The step of the last checkpoint written, which the message says is kept.

    Raises
    ------
    BlursynthError
        When any rank's loss is NaN or infinite.
    """
    if env.any(not math.isfinite(value)):
        done = int(ckpt_step) if ckpt_step is not None else None
        raise BlursynthError(
            f"step {step + 1}: the loss is {value} (training diverged; no weights written after it"
            + (f", the checkpoint of step {done} is kept" if done else "")
            + "); lower --lr or --weight-reg")


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 120:
        return f"{seconds} s"
    h, m = divmod(seconds // 60, 60)
    return f"{h} h {m:02d} min" if h else f"{m} min"


class TrainControl:
    """The progress bar, the signals, the time budget and the stop vote of one run.

    Parameters
    ----------
    config : TrainConfig
        The resolved config (``steps``, ``time_budget_s``, ``quiet``, ``model``).
    env : Distributed
        The process group; only rank 0 shows the bar.
    start : int
        The step the run starts (or resumes) at.
    t0 : float
        ``time.monotonic()`` when the run's set-up began: the time budget counts from it.
    log : callable
        Writes one note on stderr (rank 0, unless quiet).
    """

    def __init__(self, config: TrainConfig, env: Distributed, start: int, t0: float, log: Callable[[str], None]):
        from tqdm.auto import tqdm

        self.config, self.env, self.start, self.t0, self.log = config, env, start, t0, log
        self.budgeted = config.time_budget_s is not None
        self.bar = tqdm(total=None if self.budgeted else config.steps, initial=start, unit="step",
                        desc=(f"{config.model} ({config.time_budget_s / 60:.3g} min budget)" if self.budgeted
                              else config.model),
                        file=sys.stderr, disable=config.quiet or not env.main, dynamic_ncols=True)
        self.signals = None
        self.t_loop = time.monotonic()
        self.reported = False

    @contextlib.contextmanager
    def between_steps(self, batches: Iterator) -> Iterator["TrainControl"]:
        """Catch Ctrl-C and SIGTERM for the loop; on the way out close the bar and the loader's workers."""
        self.t_loop, self.reported = time.monotonic(), False
        try:
            with stop_between_steps() as self.signals:
                yield self
        finally:
            self.bar.close()
            shutdown = getattr(batches, "_shutdown_workers", None)
            if shutdown is not None:
                shutdown()

    @property
    def interrupted(self) -> bool:
        """True once Ctrl-C or SIGTERM asked the run to stop."""
        return self.signals is not None and self.signals.signum is not None

    def next_batch(self, batches: Iterator) -> dict | None:
        """The next batch, or None when a DataLoader worker ended by the same Ctrl-C."""
        try:
            return next(batches)
        except RuntimeError:
            if not self.interrupted:
                raise
            return None

    def step_done(self, step: int) -> bool:
        """Count ``step`` (1-based, just taken); True when every rank is to stop after it.

        A rank stops on a signal or at the end of the time budget; the vote
        makes all ranks stop together.
        """
        self.bar.update(1)
        # Early: after 3 steps, or after the first step that ends 20 s in (a slow CPU).
        if not self.reported and (step - self.start >= 3 or step == self.config.steps
                                  or time.monotonic() - self.t_loop >= 20):
            self.report_speed(step)
            self.reported = True
        stop = self.budgeted and time.monotonic() - self.t0 >= self.config.time_budget_s
        return self.env.any(stop or self.interrupted)

    def show_loss(self, loss: float) -> None:
        """The last logged loss, beside the bar."""
        self.bar.set_postfix(loss=f"{loss:.5f}")

    def report_speed(self, step: int) -> None:
        """One early line: seconds per step, the time left, and a hint for long runs."""
        config = self.config
        per_step = (time.monotonic() - self.t_loop) / max(step - self.start, 1)
        left = per_step * (config.steps - step)
        steps = f"{config.steps:,} steps"
        if self.budgeted:
            budget_left = max(config.time_budget_s - (time.monotonic() - self.t0), 0.0)
            if budget_left < left:  # the budget ends the run first: show the steps that fit in it
                left = budget_left
                steps = (f"about {min(config.steps, step + int(left / max(per_step, 1e-9))):,} steps in the "
                         f"{config.time_budget_s / 60:.3g} min budget")
        eta = time.strftime("%a %d %b %H:%M" if left > 20 * 3600 else "%H:%M", time.localtime(time.time() + left))
        msg = f"{per_step:.2f} s/step on {self.env.device}; {steps}: about {_duration(left)} left (ETA {eta})"
        if left > LONG_RUN_S and not self.budgeted:
            msg += "; pass --time-budget MINUTES (or fewer --steps) to stop sooner"
        self.log(msg)

    def interruption(self, step: int, out: Path) -> Interrupted:
        """The error to raise once the checkpoint of ``step`` is written after a signal."""
        signum = self.signals.signum
        return Interrupted(f"{signal.Signals(signum).name} at step {step}: checkpoint written to {out}; "
                           "re-run the same command with --resume to continue", signum)

    def note_budget_end(self, step: int) -> None:
        """Say so when the time budget, not ``--steps``, ended the run."""
        if self.budgeted and step < self.config.steps:
            self.log(f"time budget of {self.config.time_budget_s / 60:.3g} min reached at step {step}")
