"""Repo facts read from real repositories: changed lines, merge-base, clean trees, worktrees."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_worktree_gates import git as facts
from pytest_worktree_gates.errors import GitError
from tests.conftest import commit_all, git, init_repo


def write_lines(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")


def folder(path: Path) -> Path:
    path.mkdir(parents=True)
    return path


def base_lines(name: str, count: int) -> list[str]:
    """Unique lines, so git's diff of a base file against its edit is unambiguous."""
    return [f"base {name} {number}" for number in range(1, count + 1)]


def new_line_numbers(path: Path) -> set[int]:
    """The 1-based numbers of the lines an edit added (every added line says "new")."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return {number for number, line in enumerate(lines, start=1) if line.startswith("new")}


def raw_diff(root: Path, base: str, quote_path: str) -> str:
    return git(root, "-c", f"core.quotePath={quote_path}", "diff", "--no-color", "-U0", base, "--")


@pytest.fixture
def outside(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory that git must not find a repository above."""
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    return folder(tmp_path / "outside")


# Names git has to quote, or that a careless parser would split, strip or take for an option.
HOSTILE = {
    "space": "with space.py",
    "unicode": "ünïcödé €.py",
    "newline": "new\nline.py",
    "dash": "-dash.py",
    "deep": "sub/dir/deep file.py",
    "quote": 'say "hi".py',
    "backslash": "back\\slash.py",
    "tab": "tab\there.py",
}


@pytest.fixture
def hostile(tmp_path: Path) -> tuple[Path, str, dict[str, set[int]]]:
    """A repo whose working tree changes hostile names in every way a diff can show.

    Returns the root, the base commit and the changed lines git must report.
    """
    root = init_repo(folder(tmp_path / "repo"))
    for key, name in HOSTILE.items():
        if key != "newline":
            write_lines(root / name, base_lines(key, 5))
    write_lines(root / "old name.py", base_lines("renamed", 20))
    write_lines(root / "deleted.py", base_lines("deleted", 4))
    write_lines(root / "shrunk.py", base_lines("shrunk", 10))
    write_lines(root / "multi.py", base_lines("multi", 20))
    (root / "data.bin").write_bytes(b"\0\1\2")
    base = commit_all(root, "base")

    def edit(name: str, change: object) -> None:
        lines = (root / name).read_text(encoding="utf-8").splitlines()
        assert callable(change)
        change(lines)
        write_lines(root / name, lines)

    edit(HOSTILE["space"], lambda lines: lines.__setitem__(2, "new middle"))
    edit(HOSTILE["unicode"], lambda lines: lines.extend(["new ë 1", "new ë 2"]))
    edit(HOSTILE["dash"], lambda lines: lines.insert(0, "new top"))
    edit(HOSTILE["deep"], lambda lines: lines.__setitem__(1, "new second"))
    edit(HOSTILE["quote"], lambda lines: lines.append("new end"))
    edit(HOSTILE["backslash"], lambda lines: lines.insert(3, "new inserted"))
    edit(HOSTILE["tab"], lambda lines: lines.__setitem__(4, "new last"))
    write_lines(root / HOSTILE["newline"], ["new 1", "new 2", "new 3"])
    # Several hunks in one file: an insertion, a replacement, a deletion and an append.
    edit(
        "multi.py",
        lambda lines: (
            lines.insert(2, "new a"),
            lines.insert(3, "new b"),
            lines.__setitem__(11, "new replaced"),
            lines.__delitem__(15),
            lines.extend(["new x", "new y", "new z"]),
        ),
    )
    edit("shrunk.py", lambda lines: lines.__delitem__(slice(3, 6)))
    git(root, "mv", "old name.py", "sub/new name.py")
    edit("sub/new name.py", lambda lines: lines.__setitem__(9, "new renamed line"))
    git(root, "rm", "-q", "deleted.py")
    (root / "data.bin").write_bytes(b"\0\1\2\3")
    git(root, "add", "-A")
    # One more change left unstaged, on top of a staged one in the same file.
    edit(HOSTILE["unicode"], lambda lines: lines.append("new unstaged"))

    expected = {
        name: new_line_numbers(root / name)
        for name in [*HOSTILE.values(), "multi.py", "sub/new name.py"]
    }
    assert expected["multi.py"] == {3, 4, 12, 22, 23, 24}
    assert expected["sub/new name.py"] == {10}
    assert expected[HOSTILE["unicode"]] == {6, 7, 8}
    return root, base, expected


def test_changed_lines_of_hostile_names_renames_and_deletions(
    hostile: tuple[Path, str, dict[str, set[int]]],
) -> None:
    root, base, expected = hostile
    changed = facts.changed_lines(root, base)
    assert changed == expected
    # Spelled out, since these are what a sloppy parser gets wrong:
    assert "old name.py" not in changed  # a rename reports the new name only
    assert "sub/new name.py" in changed and changed["sub/new name.py"] == {10}
    assert "deleted.py" not in changed and "shrunk.py" not in changed  # no added line
    assert "data.bin" not in changed  # binary: no lines
    assert changed["new\nline.py"] == {1, 2, 3}
    assert changed["-dash.py"] == {1}


@pytest.mark.parametrize("quote_path", ["true", "false"])
def test_parse_unified_diff_of_real_git_output(
    hostile: tuple[Path, str, dict[str, set[int]]], quote_path: str
) -> None:
    """Whether git escapes non-ASCII names as octal or not, the parser reads the same names."""
    root, base, expected = hostile
    assert facts.parse_unified_diff(raw_diff(root, base, quote_path)) == expected


def test_parse_unified_diff_of_pure_deletions_is_empty(tmp_path: Path) -> None:
    root = init_repo(tmp_path)
    write_lines(root / "a.py", base_lines("a", 10))
    base = commit_all(root)
    write_lines(root / "a.py", base_lines("a", 10)[:2] + base_lines("a", 10)[5:])
    diff = raw_diff(root, base, "false")
    assert "@@ -3,3 +2,0 @@" in diff  # really a pure-deletion hunk
    assert facts.parse_unified_diff(diff) == {}


@pytest.mark.parametrize("quote_path", ["true", "false"])
def test_quoted_name_with_non_ascii_characters(tmp_path: Path, quote_path: str) -> None:
    """A name git must quote (newline, quote, tab) that also holds non-ASCII characters."""
    root = init_repo(tmp_path)
    write_lines(root / "keep.py", ["x"])
    base = commit_all(root)
    names = ["naïve\nname.py", 'ü "q".py', "€\tcost.py", "日本\n語.py"]
    for name in names:
        write_lines(root / name, ["new 1", "new 2"])
    git(root, "add", "-A")
    expected = {name: {1, 2} for name in names}
    assert facts.parse_unified_diff(raw_diff(root, base, quote_path)) == expected
    if quote_path == "false":  # what changed_lines itself asks git for
        assert facts.changed_lines(root, base) == expected


@pytest.mark.parametrize("separator", ["\u2028", "\u0085", "\x0c"])
def test_name_with_a_unicode_line_separator(tmp_path: Path, separator: str) -> None:
    """Only "\\n" ends a line of a diff; other line breaks are ordinary name characters."""
    root = init_repo(tmp_path)
    write_lines(root / "keep.py", ["x"])
    base = commit_all(root)
    name = f"odd{separator}name.py"
    write_lines(root / name, ["new 1"])
    git(root, "add", "-A")
    assert facts.changed_lines(root, base) == {name: {1}}


def test_added_lines_that_look_like_a_file_header(tmp_path: Path) -> None:
    """An added line "++ x" shows as "+++ x" in the diff: it is content, not a new file."""
    root = init_repo(tmp_path)
    write_lines(root / "notes.md", base_lines("notes", 10))
    base = commit_all(root)
    lines = base_lines("notes", 10)
    lines.insert(1, "++ b/elsewhere.py")
    lines.append("new tail")
    write_lines(root / "notes.md", lines)
    assert facts.changed_lines(root, base) == {"notes.md": {2, 12}}


def test_changed_lines_of_a_file_that_is_not_utf8(tmp_path: Path) -> None:
    """Legacy Latin-1 text must not crash the gate; its lines are counted like any other."""
    root = init_repo(tmp_path)
    (root / "legacy.txt").write_bytes(b"caf\xe9 1\n")
    base = commit_all(root)
    (root / "legacy.txt").write_bytes(b"caf\xe9 1\ncaf\xe9 2\n")
    assert facts.changed_lines(root, base) == {"legacy.txt": {2}}


@pytest.fixture
def branched(tmp_path: Path) -> tuple[Path, str]:
    """main and feature/x forked at one commit, then each moved on; feature/x checked out."""
    root = init_repo(folder(tmp_path / "repo"))
    write_lines(root / "shared.py", base_lines("shared", 5))
    write_lines(root / "main_only.py", base_lines("main", 5))
    write_lines(root / "feature.py", base_lines("feature", 5))
    fork = commit_all(root, "fork point")
    git(root, "switch", "-q", "-c", "feature/x")
    lines = base_lines("feature", 5)
    lines.insert(1, "new committed")
    write_lines(root / "feature.py", lines)
    commit_all(root, "feature work")
    git(root, "switch", "-q", "main")
    write_lines(root / "main_only.py", [*base_lines("main", 5), "moved on main"])
    commit_all(root, "main moves on")
    git(root, "switch", "-q", "feature/x")
    return root, fork


def test_merge_base_is_the_fork_point(branched: tuple[Path, str]) -> None:
    root, fork = branched
    assert facts.merge_base(root, "main") == fork
    assert facts.merge_base(root, "main") == git(root, "merge-base", "HEAD", "main").strip()


def test_changed_lines_include_staged_and_unstaged_but_not_untracked(
    branched: tuple[Path, str],
) -> None:
    root, _fork = branched
    lines = base_lines("shared", 5)
    lines.append("new staged")
    write_lines(root / "shared.py", lines)
    git(root, "add", "shared.py")
    lines.insert(0, "new unstaged")
    write_lines(root / "shared.py", lines)
    write_lines(root / "untracked.py", ["new but untracked"])
    changed = facts.changed_lines(root, facts.merge_base(root, "main"))
    assert changed == {"feature.py": {2}, "shared.py": {1, 7}}
    # main's own later change is not this branch's change
    assert "main_only.py" not in changed
    assert "untracked.py" not in changed


def test_changed_lines_of_an_unchanged_branch_are_empty(branched: tuple[Path, str]) -> None:
    root, _fork = branched
    git(root, "switch", "-q", "main")
    assert facts.changed_lines(root, facts.merge_base(root, "main")) == {}


@pytest.mark.parametrize("ref", ["no-such-branch", "HEAD~99", "main..HEAD", "--all"])
def test_merge_base_with_an_unknown_ref_names_it(branched: tuple[Path, str], ref: str) -> None:
    root, _fork = branched
    with pytest.raises(GitError) as raised:
        facts.merge_base(root, ref)
    message = str(raised.value)
    assert "\n" not in message
    assert repr(ref) in message
    assert message.startswith("unknown git ref")


def test_merge_base_without_shared_history(branched: tuple[Path, str]) -> None:
    root, _fork = branched
    git(root, "switch", "-q", "--orphan", "island")
    write_lines(root / "island.py", ["alone"])
    commit_all(root, "island")
    with pytest.raises(GitError, match="share no history"):
        facts.merge_base(root, "main")


def test_merge_base_before_the_first_commit(tmp_path: Path) -> None:
    root = init_repo(folder(tmp_path / "empty"))
    other = init_repo(folder(tmp_path / "other"))
    write_lines(other / "a.py", ["a"])
    commit_all(other)
    git(root, "fetch", "-q", str(other), "main:refs/heads/elsewhere")
    with pytest.raises(GitError, match="no commit yet"):
        facts.merge_base(root, "elsewhere")


@pytest.fixture
def committed(tmp_path: Path) -> Path:
    root = init_repo(folder(tmp_path / "repo"))
    write_lines(root / "a.py", ["a"])
    write_lines(root / ".gitignore", ["*.log"])
    commit_all(root)
    return root


def test_clean_tree_is_the_head_tree(committed: Path) -> None:
    tree = facts.clean_tree(committed)
    assert tree == git(committed, "rev-parse", "HEAD^{tree}").strip()
    assert tree == git(committed, "write-tree").strip()
    (committed / "debug.log").write_text("ignored files do not count\n")
    assert facts.clean_tree(committed) == tree


@pytest.mark.parametrize("dirt", ["staged", "unstaged", "untracked", "deleted"])
def test_clean_tree_is_none_when_dirty(committed: Path, dirt: str) -> None:
    if dirt == "untracked":
        write_lines(committed / "b.py", ["b"])
    elif dirt == "deleted":
        (committed / "a.py").unlink()
    else:
        write_lines(committed / "a.py", ["a", "more"])
        if dirt == "staged":
            git(committed, "add", "a.py")
    assert facts.clean_tree(committed) is None


def test_clean_tree_of_a_repo_without_commits(tmp_path: Path) -> None:
    assert facts.clean_tree(init_repo(tmp_path)) is None


def test_find_repo_outside_a_repo(outside: Path) -> None:
    assert facts.find_repo(outside) is None


def test_find_repo_in_the_main_worktree(committed: Path) -> None:
    (committed / "deep" / "er").mkdir(parents=True)
    for start in (committed, committed / "deep" / "er"):
        repo = facts.find_repo(start)
        assert repo is not None
        assert repo.root == committed.resolve()
        assert repo.git_dir == committed.resolve() / ".git"
        assert repo.common_dir == committed.resolve() / ".git"
        assert repo.state_dir == committed.resolve() / ".git" / "worktree-gates"


def test_find_repo_in_a_linked_worktree(committed: Path) -> None:
    linked = committed.parent / "linked"
    git(committed, "worktree", "add", "-q", "-b", "feature/linked", str(linked))
    (linked / "pkg").mkdir()
    main = facts.find_repo(committed)
    for start in (linked, linked / "pkg"):
        repo = facts.find_repo(start)
        assert repo is not None
        assert repo.root == linked.resolve()
        assert repo.git_dir == committed.resolve() / ".git" / "worktrees" / "linked"
        assert repo.common_dir == committed.resolve() / ".git"
        assert main is not None and repo.state_dir == main.state_dir
        assert repo.git_dir != main.git_dir  # each worktree keeps its own identity


def test_find_repo_ignores_git_variables_of_a_surrounding_hook(
    committed: Path, outside: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A gate run from a git hook inherits GIT_DIR; it must still read its own repo."""
    other = init_repo(folder(outside / "other"))
    monkeypatch.setenv("GIT_DIR", str(committed / ".git"))
    monkeypatch.setenv("GIT_INDEX_FILE", str(committed / ".git" / "index"))
    assert facts.find_repo(outside) is None
    repo = facts.find_repo(other)
    assert repo is not None and repo.root == other.resolve()


def test_tracked_files(hostile: tuple[Path, str, dict[str, set[int]]]) -> None:
    root, _base, _expected = hostile
    write_lines(root / "untracked.py", ["not tracked"])
    write_lines(root / "notes.txt", ["tracked text"])
    write_lines(root / "sub" / "notes.txt", ["tracked text"])
    git(root, "add", "notes.txt", "sub/notes.txt")
    python = facts.tracked_files(root, ["*.py"])
    assert sorted(python) == sorted([*HOSTILE.values(), "multi.py", "shrunk.py", "sub/new name.py"])
    assert "untracked.py" not in python and "deleted.py" not in python
    assert sorted(facts.tracked_files(root, ["*.txt", "*.bin"])) == [
        "data.bin",
        "notes.txt",
        "sub/notes.txt",
    ]
    assert facts.tracked_files(root, ["sub/*.txt"]) == ["sub/notes.txt"]
    assert facts.tracked_files(root, ["*.rs"]) == []


def test_git_children_do_not_inherit_repo_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_DIR", "/elsewhere/.git")
    monkeypatch.setenv("GIT_INDEX_FILE", "/elsewhere/index")
    env = facts.clean_env(keep=["GIT_INDEX_FILE"])
    assert "GIT_DIR" not in env
    assert env["GIT_INDEX_FILE"] == "/elsewhere/index"
    assert env["GIT_AUTHOR_NAME"] == "Test"


def test_git_failure_is_one_line(committed: Path) -> None:
    with pytest.raises(GitError) as raised:
        facts.run(["cat-file", "-p", "no-such-object"], cwd=committed)
    assert "\n" not in str(raised.value)
    assert str(raised.value).startswith("git cat-file -p no-such-object failed: ")
