"""The README's Python snippet works when pasted into a script, and a script without the
`if __name__ == "__main__":` guard gets a clear error instead of a broken pool (issue 13 item 11)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def readme_snippet() -> str:
    text = (ROOT / "README.md").read_text()
    api = text[text.index("## The Python API"):]
    return re.search(r"```python\n(.*?)```", api, re.S).group(1)


def run_script(tmp_path: Path, body: str) -> subprocess.CompletedProcess:
    script = tmp_path / "script.py"
    script.write_text(body)
    return subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=ENV, cwd=ROOT, timeout=600)


def small(snippet: str, tmp_path: Path) -> str:
    """The snippet at a classroom-sized cost (60 days measured after the classroom's year of warm-up), writing its
    report under tmp_path (never into the repository)."""
    out = snippet.replace("replications=10", "replications=2, customers=150, days=425, flywheel_split=False")
    return out.replace('"results/my-comparison"', repr(str(tmp_path / "report")))


def test_the_readme_snippet_runs_as_a_script(tmp_path):
    snippet = readme_snippet()
    assert 'if __name__ == "__main__":' in snippet and "jobs=2" in snippet
    done = run_script(tmp_path, small(snippet, tmp_path) + "    print('verdict', sorted(comp.summary()['verdict']))\n")
    assert done.returncode == 0, done.stderr
    assert "verdict" in done.stdout and (tmp_path / "report" / "report.html").is_file()


def test_a_script_without_the_guard_gets_a_clear_error_not_a_broken_pool(tmp_path):
    body = "\n".join(line[4:] if line.startswith("    ") else line
                     for line in small(readme_snippet(), tmp_path).splitlines()
                     if not line.startswith("if __name__"))
    assert "if __name__" not in body
    done = run_script(tmp_path, body + "\n")
    assert done.returncode == 1
    assert "UnguardedMain" in done.stderr and 'if __name__ == "__main__":' in done.stderr
    assert "script.py, whose line 4" in done.stderr
    assert "BrokenProcessPool" not in done.stderr
    one = run_script(tmp_path, body.replace("jobs=2", "jobs=1") + "\n")  # one process needs no guard
    assert one.returncode == 0, one.stderr


def test_a_batch_from_an_unguarded_script_gets_the_same_error(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"name: g\nscenario: {ROOT / 'scenarios' / 'classroom.yaml'}\ncustomers: 100\ndays: 395\n"
                    "policies: [none]\nreplications: 2\n")
    call = ("from lab.batch import run_batch\n"
            f"print(run_batch({str(spec)!r}, {str(tmp_path / 'store')!r}, jobs=2).completed)\n")
    done = run_script(tmp_path, call)
    assert done.returncode == 1 and "UnguardedMain" in done.stderr and "BrokenProcessPool" not in done.stderr
    assert not (tmp_path / "store").exists()  # refused before the store is made: the same call may run again
    one = run_script(tmp_path, call.replace("jobs=2", "jobs=1"))  # one process needs no guard, as for compare
    assert one.returncode == 0, one.stderr
    assert one.stdout.split() == ["2"]


def test_a_script_read_from_stdin_is_told_to_be_saved_to_a_file(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"name: g\nscenario: {ROOT / 'scenarios' / 'classroom.yaml'}\ncustomers: 100\ndays: 395\n"
                    "policies: [none]\nreplications: 2\n")
    call = f"from lab.batch import run_batch\nrun_batch({str(spec)!r}, {str(tmp_path / 'store')!r}, jobs=2)\n"
    done = subprocess.run([sys.executable, "-"], input=call, capture_output=True, text=True, env=ENV, cwd=tmp_path,
                          timeout=600)
    assert done.returncode == 1 and "UnguardedMain" in done.stderr and "read from <stdin>, not a file" in done.stderr
    assert "FileNotFoundError" not in done.stderr and not (tmp_path / "store").exists()
