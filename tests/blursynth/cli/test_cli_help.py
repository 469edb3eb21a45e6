"""Every command and option explains itself: help text everywhere, defaults shown,
and the top-level help names every command."""

from __future__ import annotations

import click
import pytest

from blursynth.cli import main
from tests.helpers import run_ok


def commands():
    return sorted(main.commands.items())


@pytest.mark.parametrize("name, command", commands(), ids=[n for n, _ in commands()])
def test_every_option_has_help_and_a_shown_default(name, command):
    assert (command.help or "").strip(), f"{name}: no help text"
    for param in command.params:
        if not isinstance(param, click.Option) or param.hidden or param.name == "help":
            continue
        where = f"{name} {param.opts[0]}"
        assert (param.help or "").strip(), f"{where}: no help text"
        ctx = click.Context(command)
        default = param.get_default(ctx, call=False)
        unset = default is None or type(default).__name__ == "Sentinel"  # click's UNSET: no default
        has_default = not unset and not param.is_flag and not param.multiple
        if has_default:
            assert param.show_default, f"{where}: default {param.default!r} is not shown"


def test_top_level_help_lists_every_command():
    out = run_ok("--help").output
    summary = out.split("Commands:")[0]  # the hand-written overview, not click's own list
    for name in main.commands:
        assert f"blursynth {name}" in summary, f"the overview does not mention '{name}'"
