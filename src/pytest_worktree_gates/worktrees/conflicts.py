"""The conflict gate's text rules: resolve a three-way conflict only when it is provably safe.

Pure functions over text, so each rule is tested on strings. A file is split into regions with a
three-way line merge; a region that both sides changed differently is resolved only when

- both sides made the same change (git reports such regions when the surroundings differ),
- the sides differ from each other or from the base in whitespace at line ends only,
- it is a block of Python imports that both sides only added to: the union, deduplicated and
  sorted as ruff's and isort's defaults sort (plain imports, then from-imports, by module),
- it is a list that both sides only appended to: requirements/constraints files, and
  ``"item",`` lines of arrays in pyproject.toml (dependencies).

Anything else stays a conflict for a human. A wrong "resolution" could land on main, so when in
doubt a rule says no; the final gate still runs on whatever is resolved.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher
from fnmatch import fnmatch
from pathlib import PurePosixPath

Lines = tuple[str, ...]


@dataclass(frozen=True)
class Region:
    kind: str  # unchanged | ours | theirs | same | conflict
    base: Lines
    ours: Lines
    theirs: Lines


@dataclass(frozen=True)
class Hunk:
    """An unresolved conflict: where it starts in our version and how big each side is."""

    line: int
    ours: int
    theirs: int


@dataclass(frozen=True)
class Resolution:
    text: str | None  # None: a human has to decide
    rules: tuple[str, ...]  # which rules resolved which regions, in order
    hunks: tuple[Hunk, ...]  # the regions no rule could resolve

    @property
    def resolved(self) -> bool:
        return self.text is not None


def _sync_regions(base: Lines, ours: Lines, theirs: Lines) -> list[tuple[int, ...]]:
    """Stretches of the base that both sides kept unchanged (the merge3 algorithm)."""
    matches_ours = SequenceMatcher(None, base, ours, autojunk=False).get_matching_blocks()
    matches_theirs = SequenceMatcher(None, base, theirs, autojunk=False).get_matching_blocks()
    index_ours = index_theirs = 0
    regions: list[tuple[int, ...]] = []
    while index_ours < len(matches_ours) and index_theirs < len(matches_theirs):
        base_a, at_ours, size_a = matches_ours[index_ours]
        base_b, at_theirs, size_b = matches_theirs[index_theirs]
        start, end = max(base_a, base_b), min(base_a + size_a, base_b + size_b)
        if start < end:
            ours_start = at_ours + start - base_a
            theirs_start = at_theirs + start - base_b
            size = end - start
            regions.append(
                (start, end, ours_start, ours_start + size, theirs_start, theirs_start + size)
            )
        if base_a + size_a < base_b + size_b:
            index_ours += 1
        else:
            index_theirs += 1
    regions.append((len(base), len(base), len(ours), len(ours), len(theirs), len(theirs)))
    return regions


def regions(base: Lines, ours: Lines, theirs: Lines) -> Iterator[Region]:
    """The file as unchanged, one-sided, identical and conflicting regions."""
    at_base = at_ours = at_theirs = 0
    for base_start, base_end, ours_start, ours_end, theirs_start, theirs_end in _sync_regions(
        base, ours, theirs
    ):
        old = base[at_base:base_start]
        mine, main = ours[at_ours:ours_start], theirs[at_theirs:theirs_start]
        if mine or main:
            if mine == main:
                yield Region("same", old, mine, main)
            elif mine == old:
                yield Region("theirs", old, mine, main)
            elif main == old:
                yield Region("ours", old, mine, main)
            else:
                yield Region("conflict", old, mine, main)
        if base_end > base_start:
            kept = base[base_start:base_end]
            yield Region("unchanged", kept, kept, kept)
        at_base, at_ours, at_theirs = base_end, ours_end, theirs_end


def _strip_ends(lines: Sequence[str]) -> list[str]:
    # Trailing whitespace and line endings only: leading whitespace is syntax in Python and YAML.
    return [line.rstrip() for line in lines]


def whitespace_only(region: Region) -> Lines | None:
    base, ours, theirs = (_strip_ends(side) for side in (region.base, region.ours, region.theirs))
    if ours == theirs or theirs == base:
        return region.ours
    if ours == base:
        return region.theirs
    return None


# One-line imports only: a parenthesised or continued import is left to a human.
_IMPORT = re.compile(r"^(?:import [\w., ]+|from [\w.]+ import [\w, ]+)(?:\s+#.*)?$")
_FROM = re.compile(r"^from ([\w.]+) import ([\w, ]+)$")


def _name_key(name: str) -> tuple[int, str]:
    """isort/ruff order-by-type: CONSTANTS, then Classes, then everything else."""
    if name.isupper() and len(name) > 1:
        return (0, name)
    if name[:1].isupper():
        return (1, name)
    return (2, name.lower())


def _sorted_imports(lines: Sequence[str]) -> list[str]:
    plain: set[str] = set()
    from_names: dict[str, set[str]] = {}
    for line in (line.strip() for line in lines):
        found = _FROM.match(line)
        if found and " as " not in line:
            names = {name.strip() for name in found.group(2).split(",") if name.strip()}
            from_names.setdefault(found.group(1), set()).update(names)
        else:
            plain.add(line)
    module = lambda line: line.split()[1].lower()  # noqa: E731 - a sort key, named for reading
    straight = sorted((line for line in plain if line.startswith("import ")), key=module)
    froms = [line for line in plain if line.startswith("from ")]
    froms += [
        f"from {name} import {', '.join(sorted(names, key=_name_key))}"
        for name, names in from_names.items()
    ]
    return straight + sorted(froms, key=module)


def python_imports(path: str, region: Region) -> Lines | None:
    if not path.endswith((".py", ".pyi")):
        return None
    sides = (region.base, region.ours, region.theirs)
    if not region.ours or not region.theirs:
        return None
    if any(not _IMPORT.match(line.strip()) for side in sides for line in side):
        return None  # a blank line (section break), code or a multi-line import: not ours to judge
    base = {line.strip() for line in region.base}
    if not (base <= {line.strip() for line in region.ours}) or not (
        base <= {line.strip() for line in region.theirs}
    ):
        return None  # a side removed an import: that is a decision, not a union
    indent = region.ours[0][: len(region.ours[0]) - len(region.ours[0].lstrip())]
    merged = _sorted_imports([*region.ours, *region.theirs])
    return tuple(f"{indent}{line}\n" for line in merged)


LIST_FILES = ("requirements*.txt", "constraints*.txt", "requirements/*.txt", "requirements*.in")
_ARRAY_ITEM = re.compile(r'^\s*"[^"\\]*",\s*$')


def appended_list(path: str, region: Region) -> Lines | None:
    name = PurePosixPath(path).name
    is_requirements = any(fnmatch(path, glob) or fnmatch(name, glob) for glob in LIST_FILES)
    is_pyproject = name == "pyproject.toml"
    if not (is_requirements or is_pyproject):
        return None
    size = len(region.base)
    # Both sides only appended after what the base had here.
    if region.ours[:size] != region.base or region.theirs[:size] != region.base:
        return None
    added_ours, added_theirs = region.ours[size:], region.theirs[size:]
    for line in (*added_ours, *added_theirs):
        if is_pyproject and not _ARRAY_ITEM.match(line):
            return None  # only `"item",` lines of an array; a new key or table is a decision
        if is_requirements and (not line.strip() or line.lstrip().startswith("-")):
            return None
    seen = {line.strip() for line in added_ours}
    extra = [line for line in added_theirs if line.strip() not in seen]
    return (*region.base, *added_ours, *_unique(extra))


def _unique(lines: Sequence[str]) -> list[str]:
    seen: set[str] = set()
    kept = []
    for line in lines:
        if line.strip() not in seen:
            seen.add(line.strip())
            kept.append(line)
    return kept


def _with_newlines(lines: Lines) -> Lines:
    """Every line but a file's last ends with a newline; a side's last line may lack one."""
    return tuple(line if line.endswith("\n") else line + "\n" for line in lines)


def resolve(path: str, base: str, ours: str, theirs: str) -> Resolution:
    """The merged text of ``path`` if every conflicting region is provably safe, else None."""
    if ours == theirs:
        return Resolution(ours, ("identical",), ())
    split = [tuple(text.splitlines(keepends=True)) for text in (base, ours, theirs)]
    merged: list[str] = []
    rules: list[str] = []
    hunks: list[Hunk] = []
    line_in_ours = 1
    import_blocks: list[int] = []  # where in `merged` a resolved import region starts
    for region in regions(*split):
        if region.kind in ("unchanged", "same", "ours"):
            chosen: Lines | None = region.ours
        elif region.kind == "theirs":
            chosen = region.theirs
        else:
            chosen, rule = _first_rule(path, region)
            if chosen is not None:
                rules.append(rule)
                if rule == "imports":
                    import_blocks.append(len(merged))
            if chosen is None:
                hunks.append(Hunk(line_in_ours, len(region.ours), len(region.theirs)))
        line_in_ours += len(region.ours)
        merged.extend(chosen or ())
    if hunks:
        return Resolution(None, tuple(rules), tuple(hunks))
    for start in import_blocks:
        merged = _sort_block_around(merged, start)
    return Resolution("".join(merged), tuple(rules), ())


def _sort_block_around(lines: list[str], index: int) -> list[str]:
    """Sort the whole run of one-line imports around ``index``, as isort would.

    The resolved region may sit between untouched import lines; sorting only the region would
    leave the block out of order for the project's linter. The run stops at a blank line (a
    section break) or anything that is not a one-line import at the same indentation.
    """
    if index >= len(lines):
        return lines
    indent = lines[index][: len(lines[index]) - len(lines[index].lstrip())]

    def is_import(line: str) -> bool:
        return (
            line.startswith(indent)
            and bool(_IMPORT.match(line.strip()))
            and (line[len(indent) : len(indent) + 1] not in (" ", "\t"))
        )

    start = index
    while start > 0 and is_import(lines[start - 1]):
        start -= 1
    end = index
    while end < len(lines) and is_import(lines[end]):
        end += 1
    block = [f"{indent}{line}\n" for line in _sorted_imports(lines[start:end])]
    return [*lines[:start], *block, *lines[end:]]


def _first_rule(path: str, region: Region) -> tuple[Lines | None, str]:
    """The first safe rule that resolves a conflicting region, in order of how little it does."""
    chosen = whitespace_only(region)
    if chosen is not None:
        return chosen, "whitespace"
    normal = _normal(region)
    chosen = python_imports(path, normal)
    if chosen is not None:
        return chosen, "imports"
    return appended_list(path, normal), "append"


def _normal(region: Region) -> Region:
    return Region(
        region.kind,
        _with_newlines(region.base),
        _with_newlines(region.ours),
        _with_newlines(region.theirs),
    )


MARKERS = re.compile(r"^(<{7} |>{7} |<{7}$|>{7}$)", re.MULTILINE)


def marker_lines(text: str) -> list[int]:
    """Line numbers (1-based) of conflict markers; ``=======`` alone is valid reStructuredText."""
    return [text.count("\n", 0, found.start()) + 1 for found in MARKERS.finditer(text)]
