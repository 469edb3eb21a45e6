"""Errors raised inside torch DataLoader worker processes reach the user as one line (issue 7)."""

from __future__ import annotations

import click
import pytest
import torch
from click.testing import CliRunner

from blursynth.cli.common import Group
from blursynth.errors import BadSourceError, BlursynthError, user_message


class Failing(torch.utils.data.Dataset):
    def __init__(self, error):
        self.error = error

    def __len__(self):
        return 4

    def __getitem__(self, i):
        if i == 2:
            raise self.error
        return torch.zeros(1)


def from_worker(error) -> BaseException:
    """What iterating a DataLoader with one worker process raises for ``error``."""
    loader = torch.utils.data.DataLoader(Failing(error), batch_size=1, num_workers=1)
    with pytest.raises(Exception) as info:
        list(loader)
    return info.value


@pytest.mark.parametrize("error", [BlursynthError("shard-00003.h5: chunk 7 fails its checksum"),
                                   BadSourceError("clip_a", "frame 12 is truncated")])
def test_a_user_error_from_a_dataloader_worker_is_its_own_message(error):
    raised = from_worker(error)
    assert "\n" in str(raised) and "DataLoader worker" in str(raised)  # what torch makes of it
    assert user_message(raised) == str(error)


def test_other_errors_from_workers_and_elsewhere_stay_errors():
    assert user_message(from_worker(ValueError("a bug"))) is None
    assert user_message(RuntimeError("CUDA out of memory")) is None
    assert user_message(BlursynthError("--n 0: must be positive")) == "--n 0: must be positive"


def test_the_cli_prints_a_worker_error_on_one_line_and_a_bug_with_its_traceback():
    @click.group(cls=Group)
    def cli():
        pass

    @cli.command()
    @click.argument("kind")
    def cmd(kind):
        error = BadSourceError("clip_a", "frame 12 is truncated") if kind == "user" else KeyError("bug")
        list(torch.utils.data.DataLoader(Failing(error), batch_size=1, num_workers=1))

    result = CliRunner().invoke(cli, ["cmd", "user"])
    assert result.exit_code == 1
    assert result.output.strip() == "blursynth: error: clip_a: frame 12 is truncated"
    result = CliRunner().invoke(cli, ["cmd", "bug"])
    assert result.exit_code != 0 and isinstance(result.exception, KeyError)
