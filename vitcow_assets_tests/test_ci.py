"""CI fails when a suite it must run is skipped: ``.ci/required_tests.py`` checked on the
JUnit reports of real pytest runs of a small test package (a server "missing" or present),
and ``.ci/run`` wired to it; every line of ``.ci/required-tests`` names a test file."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHECKER = ROOT / ".ci" / "required_tests.py"

SUITE = {
    "suite/__init__.py": "",
    "suite/test_server.py": '''
        import os
        import pytest

        @pytest.fixture()
        def server():
            if not os.environ.get("SERVER_HERE"):
                pytest.skip("the server is not installed")

        def test_talks_to_the_server(server):
            pass

        @pytest.mark.parametrize("db", ["sqlite", "postgres"])
        def test_store(db):
            if db == "postgres" and not os.environ.get("SERVER_HERE"):
                pytest.skip("no postgres")

        class TestGroup:
            def test_in_a_class(self, server):
                pass
    ''',
    "suite/test_extra.py": '''
        import os
        import pytest
        if not os.environ.get("EXTRA_HERE"):
            pytest.skip("the extra is not installed", allow_module_level=True)

        def test_uses_the_extra():
            pass
    ''',
    "suite/test_other.py": '''
        import pytest

        def test_plain():
            pass

        @pytest.mark.xfail(reason="known")
        def test_known_failure():
            assert False
    ''',
}

LIST = """
# comment lines and blank lines are ignored
suite/test_server.py                 # the server
suite/test_extra.py  # the extra
suite/test_other.py::test_known_*
"""


def _report(tmp_path: Path, **env) -> Path:
    """Run pytest on the suite (as .ci/run does, through PYTEST_ADDOPTS) and return its report."""
    for name, text in SUITE.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(textwrap.dedent(text))
    report = tmp_path / "junit.xml"
    environ = {"PATH": "/usr/bin:/bin", "PYTEST_ADDOPTS": f"--junitxml={report} -p no:cacheprovider", **env}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "suite"], cwd=tmp_path, env=environ, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-2000:]
    return report


def _check(report: Path, listed: str, tmp_path: Path) -> subprocess.CompletedProcess:
    path = tmp_path / "required-tests"
    path.write_text(listed)
    return subprocess.run([sys.executable, str(CHECKER), str(report), str(path)], capture_output=True, text=True, timeout=60)


def test_a_skipped_required_suite_fails_ci_and_names_the_test_and_the_reason(tmp_path):
    done = _check(_report(tmp_path), LIST, tmp_path)
    assert done.returncode == 1
    problems = [line for line in done.stderr.splitlines() if "skipped:" in line]
    assert any("suite.test_server::test_talks_to_the_server skipped: the server is not installed (needs the server)" in p for p in problems)
    assert any("suite.test_server.TestGroup::test_in_a_class skipped" in p for p in problems)
    assert any("test_store[postgres] skipped: no postgres" in p for p in problems)
    assert any(p.startswith("required tests: suite/test_extra.py: suite.test_extra skipped: the extra is not installed") for p in problems)
    assert not any("test_store[sqlite]" in p or "test_known_failure" in p for p in problems)  # ran; an xfail ran too
    assert len(problems) == 4 and "4 problem(s): CI fails" in done.stderr


def test_every_required_suite_run_passes_the_check(tmp_path):
    done = _check(_report(tmp_path, SERVER_HERE="1", EXTRA_HERE="1"), LIST, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "all 3 required suites ran" in done.stdout


def test_a_required_line_that_matches_no_test_fails(tmp_path):
    report = _report(tmp_path, SERVER_HERE="1", EXTRA_HERE="1")
    done = _check(report, LIST + "suite/test_renamed.py   # moved away\nsuite/test_other.py::test_nothing_*\n", tmp_path)
    assert done.returncode == 1
    assert "suite/test_renamed.py: no test ran (needs moved away)" in done.stderr
    assert "suite/test_other.py::test_nothing_*: no test ran" in done.stderr


def test_an_unreadable_report_or_list_cannot_pass(tmp_path):
    assert _check(tmp_path / "missing.xml", LIST, tmp_path).returncode == 2
    report = _report(tmp_path, SERVER_HERE="1", EXTRA_HERE="1")
    bad = _check(report, "suite/test_server\n", tmp_path)
    assert bad.returncode == 2 and "a test file (.py)" in bad.stderr


def test_ci_runs_the_readmes_command_and_then_the_check_on_its_report():
    run = (ROOT / ".ci" / "run").read_text()
    command = next(line for line in run.splitlines() if "bash scripts/test.sh" in line)
    assert "--junitxml=$report" in command and command.startswith("PYTEST_ADDOPTS=")
    check = next(line for line in run.splitlines() if "required_tests.py" in line)
    assert '"$report" "$required"' in check and run.rstrip().endswith('exit "$status"')
    # Every required suite, except those of the shared footage where it is absent.
    assert "required=.ci/required-tests\n" in run
    footage_lines = [line for line in (ROOT / ".ci" / "required-tests").read_text().splitlines() if "real footage in ../shared/footage" in line]
    assert footage_lines and all(line.split("#")[0].strip() for line in footage_lines)
    assert 'grep -v "real footage in ../shared/footage" .ci/required-tests' in run


@pytest.mark.parametrize("line", [line for line in (ROOT / ".ci" / "required-tests").read_text().splitlines() if line.split("#")[0].strip()])
def test_every_required_suite_names_a_test_file(line):
    path = line.split("#")[0].strip().split("::")[0]
    assert (ROOT / path).is_file(), f"{path} is listed in .ci/required-tests but does not exist"
