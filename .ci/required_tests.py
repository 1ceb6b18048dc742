"""Check pytest's JUnit XML report against .ci/required-tests: every listed suite ran.

    python3 .ci/required_tests.py REPORT.xml [LIST]      (LIST: default .ci/required-tests)

Exit 0 when every line of LIST matches at least one test in REPORT and none of those was
skipped (an expected failure, xfail, counts as run); else 1, naming each skipped test with
pytest's reason and each line that matched nothing; 2 when the report or list is unusable.
Standard library only: it runs before or without the project's virtual environment.
"""

import fnmatch
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import NamedTuple

DEFAULT_LIST = Path(__file__).with_name("required-tests")


class Requirement(NamedTuple):
    module: str  # dotted, as JUnit's classname gives it
    glob: str  # on the test's name
    line: str  # as written, for messages
    needs: str  # the comment: what the suite needs


class Case(NamedTuple):
    classname: str
    name: str
    skipped: str | None  # pytest's reason, None when the test ran


def parse_list(text: str) -> list[Requirement]:
    """The requirements of a list file (blank lines and ``#`` comments ignored)."""
    out = []
    for raw in text.splitlines():
        pattern, _, needs = raw.partition("#")
        pattern = pattern.strip()
        if not pattern:
            continue
        path, _, glob = pattern.partition("::")
        if not path.endswith(".py"):
            raise ValueError(f"{pattern!r}: a test file (.py), optionally ::NAME_GLOB")
        out.append(Requirement(path[:-3].replace("/", "."), glob or "*", pattern, needs.strip()))
    return out


def parse_report(text: str) -> list[Case]:
    """Every test case of a JUnit XML report, with its skip reason."""
    cases = []
    for case in ET.fromstring(text).iter("testcase"):
        skip = case.find("skipped")
        reason = None
        if skip is not None and skip.get("type") != "pytest.xfail":
            reason = skip.get("message") or "skipped"
            if reason == "collection skipped":  # the whole module; pytest puts the reason in the text
                reason = (skip.text or reason).rsplit("Skipped: ", 1)[-1].rstrip("')")
        cases.append(Case(case.get("classname") or "", case.get("name") or "", reason))
    return cases


def _matches(req: Requirement, case: Case) -> bool:
    if not case.classname:  # a module skipped at collection: its name is the module
        return case.name == req.module
    in_module = case.classname == req.module or case.classname.startswith(req.module + ".")
    return in_module and fnmatch.fnmatchcase(case.name, req.glob)


def problems(requirements: list[Requirement], cases: list[Case]) -> list[str]:
    """One line per required suite that did not run, or per skipped test in one."""
    out = []
    for req in requirements:
        matched = [c for c in cases if _matches(req, c)]
        needs = f" (needs {req.needs})" if req.needs else ""
        if not matched:
            out.append(f"{req.line}: no test ran{needs}")
        for case in matched:
            if case.skipped is not None:
                name = f"{case.classname}::{case.name}" if case.classname else case.name
                out.append(f"{req.line}: {name} skipped: {case.skipped}{needs}")
    return out


def main(argv: list[str]) -> int:
    if len(argv) not in (1, 2):
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    report, listed = Path(argv[0]), Path(argv[1]) if len(argv) == 2 else DEFAULT_LIST
    try:
        requirements, cases = parse_list(listed.read_text()), parse_report(report.read_text())
    except (OSError, ValueError, ET.ParseError) as exc:
        print(f"required tests: cannot check: {exc}", file=sys.stderr)
        return 2
    found = problems(requirements, cases)
    for line in found:
        print(f"required tests: {line}", file=sys.stderr)
    if found:
        print(f"required tests: {len(found)} problem(s): CI fails (the list: {listed})", file=sys.stderr)
        return 1
    print(f"required tests: all {len(requirements)} required suites ran")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
