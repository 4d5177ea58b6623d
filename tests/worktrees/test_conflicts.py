"""The conflict gate's text rules, pure: what is provably safe is resolved, nothing else."""

from __future__ import annotations

import pytest

from pytest_worktree_gates.worktrees.conflicts import Hunk, marker_lines, regions, resolve


def test_identical_files() -> None:
    result = resolve("a.py", "x = 1\n", "x = 2\n", "x = 2\n")
    assert result.text == "x = 2\n"
    assert result.rules == ("identical",)


def test_one_sided_changes_merge_without_a_rule() -> None:
    base = "a\nb\nc\nd\ne\n"
    ours = "A\nb\nc\nd\ne\n"
    theirs = "a\nb\nc\nd\nE\n"
    result = resolve("f.txt", base, ours, theirs)
    assert result.text == "A\nb\nc\nd\nE\n"
    assert result.rules == ()


def test_the_same_change_on_both_sides_is_kept_once() -> None:
    kinds = [r.kind for r in regions(("a\n", "b\n"), ("x\n", "b\n", "1\n"), ("x\n", "b\n"))]
    assert kinds[0] == "same"


def test_whitespace_only_difference_takes_the_real_change() -> None:
    base = "def f():\n    return 1\n"
    ours = "def f():\n    return 1   \n"  # trailing spaces only
    theirs = "def f():\n    return 2\n"
    assert resolve("m.py", base, ours, theirs).text == theirs
    assert resolve("m.py", base, theirs, ours).text == theirs
    assert resolve("m.py", base, ours, theirs).rules == ("whitespace",)


def test_both_sides_differing_in_line_end_whitespace_only() -> None:
    result = resolve("m.py", "x = 1\n", "x = 1 \r\n", "x = 1\t\n")
    assert result.resolved
    assert result.rules == ("whitespace",)


LEFT_TO_A_HUMAN = {
    "indentation is not whitespace noise": (
        "m.py", "if a:\n    b()\nc()\n", "if a:\n    b()\n    c()\n", "if a:\n    b()\nd()\n"
    ),
    "requirements with an option line": (
        "requirements.txt", "a\n", "a\n-r base.txt\n", "a\nb\n"
    ),
    "requirements with a changed line": ("requirements.txt", "a==1\n", "a==2\n", "a==3\n"),
    "one bad region spoils the file": (
        "m.py", "import os\n\nx = 1\n", "import os\nimport sys\n\nx = 2\n",
        "import json\nimport os\n\nx = 3\n",
    ),
}  # fmt: skip


@pytest.mark.parametrize(
    ("path", "base", "ours", "theirs"), LEFT_TO_A_HUMAN.values(), ids=LEFT_TO_A_HUMAN.keys()
)
def test_left_to_a_human(path: str, base: str, ours: str, theirs: str) -> None:
    assert not resolve(path, base, ours, theirs).resolved


def test_imports_added_on_both_sides_are_unioned_and_sorted() -> None:
    base = "import os\n\nX = 1\n"
    ours = "import os\nimport sys\nfrom pathlib import Path\n\nX = 1\n"
    theirs = "import os\nimport json\nfrom pathlib import PurePath\nimport sys\n\nX = 1\n"
    result = resolve("m.py", base, ours, theirs)
    assert result.rules == ("imports",)
    assert result.text == (
        "import json\nimport os\nimport sys\nfrom pathlib import Path, PurePath\n\nX = 1\n"
    )


def test_import_names_sort_constants_classes_then_functions() -> None:
    base = ""
    ours = "from m import b_func, CONST\n"
    theirs = "from m import Klass, a_func\n"
    assert resolve("m.py", base, ours, theirs).text == (
        "from m import CONST, Klass, a_func, b_func\n"
    )


def test_aliased_and_plain_imports_are_kept_deduplicated() -> None:
    base = ""
    ours = "import numpy as np\nimport os\n"
    theirs = "import os\nimport numpy as np\nimport abc\n"
    assert resolve("m.py", base, ours, theirs).text == "import abc\nimport numpy as np\nimport os\n"


def test_an_import_removed_on_one_side_is_a_decision() -> None:
    base = "import os\nimport sys\n"
    ours = "import os\n"
    theirs = "import os\nimport re\nimport sys\n"
    result = resolve("m.py", base, ours, theirs)
    assert not result.resolved
    assert result.hunks == (Hunk(2, 0, 2),)


def test_imports_rule_only_for_python_and_only_imports() -> None:
    base = "import os\n"
    ours = "import os\nimport sys\n"
    theirs = "import os\nimport json\n"
    assert not resolve("notes.txt", base, ours, theirs).resolved
    code = resolve("m.py", "", "import os\nx = 1\n", "import sys\n")
    assert not code.resolved
    multi = resolve("m.py", "", "from a import (\n    b,\n)\n", "import sys\n")
    assert not multi.resolved


def test_requirements_appended_on_both_sides() -> None:
    base = "django>=4\n"
    ours = "django>=4\nrequests>=2\n"
    theirs = "django>=4\nhttpx\nrequests>=2\n"
    result = resolve("requirements-dev.txt", base, ours, theirs)
    assert result.text == "django>=4\nrequests>=2\nhttpx\n"
    assert result.rules == ("append",)


PYPROJECT = '[project]\ndependencies = [\n    "click",\n]\n'


def test_pyproject_dependencies_appended_on_both_sides() -> None:
    ours = PYPROJECT.replace('"click",\n', '"click",\n    "rich",\n')
    theirs = PYPROJECT.replace('"click",\n', '"click",\n    "httpx",\n')
    result = resolve("pyproject.toml", PYPROJECT, ours, theirs)
    assert result.text == PYPROJECT.replace('"click",\n', '"click",\n    "rich",\n    "httpx",\n')


@pytest.mark.parametrize("added", ['version = "2"\n', '    "no-comma"\n'])
def test_pyproject_other_additions_are_left_to_a_human(added: str) -> None:
    ours = PYPROJECT.replace('"click",\n', '"click",\n' + added)
    theirs = PYPROJECT.replace('"click",\n', '"click",\n    "httpx",\n')
    assert not resolve("pyproject.toml", PYPROJECT, ours, theirs).resolved


def test_a_real_conflict_reports_its_hunks() -> None:
    base = "a = 1\nb = 2\nc = 3\n"
    ours = "a = 1\nb = 20\nc = 3\n"
    theirs = "a = 1\nb = 21\nc = 3\n"
    result = resolve("m.py", base, ours, theirs)
    assert result.text is None
    assert result.hunks == (Hunk(2, 1, 1),)


def test_marker_lines() -> None:
    text = "a\n<<<<<<< HEAD\nb\n=======\nc\n>>>>>>> main\nd\n"
    assert marker_lines(text) == [2, 6]
    assert marker_lines("Title\n=======\n") == []
