"""`lab --help`: every command has a description, every option and positional argument says what it is."""

from __future__ import annotations

import argparse

import pytest

from lab.cli import build_parser


def _commands() -> dict[str, argparse.ArgumentParser]:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


@pytest.mark.parametrize("name", sorted(_commands()))
def test_every_command_has_a_description_and_every_argument_has_help(name):
    parser = _commands()[name]
    assert (parser.description or "").strip(), f"'lab {name}' has no description"
    missing = [a.dest for a in parser._actions if not (a.help or "").strip() or a.help == argparse.SUPPRESS]
    assert not missing, f"'lab {name}': no help for {missing}"


def test_the_command_list_and_the_top_level_options_have_help():
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert {c.dest for c in sub._choices_actions if (c.help or "").strip()} == set(sub.choices)
    assert all((a.help or "").strip() for a in parser._actions if a is not sub)


def test_jobs_means_the_same_in_compare_and_batch():
    commands = _commands()
    jobs = {name: next(a for a in commands[name]._actions if a.dest == "jobs") for name in ("compare", "batch")}
    assert jobs["compare"].default == jobs["batch"].default
    assert jobs["compare"].help == jobs["batch"].help and "CPUs" in jobs["compare"].help


def test_compare_policies_says_it_takes_paths_too():
    policies = next(a for a in _commands()["compare"]._actions if a.dest == "policies")
    assert "path" in policies.help
