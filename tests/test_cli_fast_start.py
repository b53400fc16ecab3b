"""Fast start: `import lab` and the quick commands load no pandas, matplotlib or scipy.stats (a behaviour, not a
timing)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import lab

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("pandas", "matplotlib", "scipy.stats")


def _loaded_after(body: str) -> list[str]:
    """The heavy modules in sys.modules after running `body` in a fresh interpreter that imported lab.cli and lab."""
    code = (
        "import json, sys, lab.cli, lab\n"
        f"{body}\n"
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=False)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_lab_and_the_help_load_no_heavy_module():
    body = (
        "for argv in ([], *([c] for c in lab.cli.build_parser()._subparsers._group_actions[0].choices)):\n"
        "    try:\n"
        "        lab.cli.main([*argv, '--help'])\n"
        "    except SystemExit as e:\n"
        "        assert e.code == 0, (argv, e.code)\n"
    )
    assert _loaded_after(body) == []


def test_validate_and_explain_of_a_policy_load_no_heavy_module():
    points = str(ROOT / "policies" / "points.yaml")
    classroom = str(ROOT / "scenarios" / "classroom.yaml")
    body = (f"assert lab.cli.main(['validate', {points!r}, {classroom!r}, {str(ROOT / 'policies')!r}]) == 0\n"
            f"assert lab.cli.main(['explain', {points!r}]) == 0")
    assert _loaded_after(body) == []


def test_the_public_api_is_still_there_and_loads_on_first_use():
    from lab.experiment.compare import CompareOptions, compare
    from lab.scenario.loader import load_scenario

    assert set(lab.__all__) <= set(dir(lab))
    for name in lab.__all__:
        assert getattr(lab, name) is not None, name
    assert lab.compare is compare and lab.CompareOptions is CompareOptions and lab.load_scenario is load_scenario
    assert _loaded_after("lab.CompareOptions") != []  # the heavy part loads when it is asked for


def test_an_unknown_name_is_an_attribute_error():
    try:
        lab.no_such_name  # noqa: B018
    except AttributeError as e:
        assert "no_such_name" in str(e)
    else:
        raise AssertionError("lab.no_such_name did not raise")
