"""Render a :class:`GateResult`: terminal table, JSON, JUnit XML, markdown, GitHub annotations."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from xml.etree import ElementTree

from coverage.results import display_covered

from pytest_worktree_gates.errors import GatesError
from pytest_worktree_gates.gates.model import Condition, GateResult

FORMATS = ("json", "junit", "markdown")


def parse_report_option(value: str) -> tuple[str, Path]:
    """``FORMAT:PATH`` as given to ``--gates-report``."""
    kind, sep, path = value.partition(":")
    if not sep or not path or kind not in FORMATS:
        raise GatesError(
            f"--gates-report={value}: expected FORMAT:PATH with FORMAT one of "
            f"{', '.join(FORMATS)} (for example --gates-report=json:gates.json)"
        )
    return kind, Path(path)


def show_value(condition: Condition, value: float | int | None, precision: int) -> str:
    if value is None:
        return "-"
    if condition.percent:
        return f"{display_covered(float(value), precision)}%"
    return str(value)


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def show_actual(condition: Condition, precision: int) -> str:
    if condition.name == "tests":
        counts = condition.details
        text = f"{counts.get('passed', 0)} passed, {counts.get('failed', 0)} failed"
        if counts.get("errors"):
            text += ", " + plural(int(counts["errors"]), "error")
        return text + (f", {counts['skipped']} skipped" if counts.get("skipped") else "")
    if condition.actual is None:
        return str(condition.details.get("error", condition.details.get("note", "-")))
    if condition.name == "serve.health":
        return f"healthy in {condition.actual:.2f} s"
    if condition.name.startswith("check:"):
        if "note" in condition.details:
            return "no files"
        return plural(int(condition.actual), "error")
    return show_value(condition, condition.actual, precision)


def show_threshold(condition: Condition, precision: int) -> str:
    if condition.name == "tests":
        return "0 failed, >= 1 ran"
    if condition.threshold is None:
        return "-"
    if condition.name == "serve.health":
        return f"<= {condition.threshold:g} s"
    if condition.percent:
        return ">= " + show_value(condition, condition.threshold, precision)
    return f"<= {condition.threshold}"


def verdict(condition: Condition) -> str:
    return "pass" if condition.passed else "FAIL"


def table_rows(result: GateResult) -> list[tuple[str, str, str, str]]:
    return [
        (
            condition.name,
            show_actual(condition, result.precision),
            show_threshold(condition, result.precision),
            verdict(condition),
        )
        for condition in result.conditions
    ]


def table(result: GateResult) -> list[str]:
    """The compact terminal table: one row per condition."""
    header = ("condition", "actual", "threshold", "verdict")
    rows = table_rows(result)
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(4)]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]


def failure_details(result: GateResult) -> list[str]:
    """What a failed condition needs a reader to see: the findings, the uncovered lines."""
    lines: list[str] = []
    for condition in result.conditions:
        if condition.passed:
            continue
        details = condition.details
        if condition.name.startswith("check:") and details.get("output"):
            lines.append(f"{condition.name} ({details.get('command')}):")
            lines.extend(f"  {line}" for line in str(details["output"]).splitlines())
        elif condition.name == "serve.health":
            lines.append(f"serve.health ({details.get('command')}): {details.get('error')}")
            lines.extend(f"  {line}" for line in str(details.get("output", "")).splitlines())
        elif condition.name == "coverage.diff":
            for name, missing in dict(details.get("uncovered", {})).items():
                which = "line" if len(missing) == 1 else "lines"
                lines.append(f"coverage.diff: {name}: {which} {compress(missing)} not covered")
        elif condition.name == "coverage.ratchet":
            for name, counts in dict(details.get("files", {})).items():
                lines.append(
                    f"coverage.ratchet: {name}: {counts['missing']} missing lines, "
                    f"baseline allows {counts['baseline']}"
                )
    return lines


def compress(lines: Iterable[int]) -> str:
    """1,2,3,5 -> '1-3, 5', as `coverage report -m` writes ranges."""
    return ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in ranges(lines))


def ranges(lines: Iterable[int]) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    for line in sorted(lines):
        if spans and line == spans[-1][1] + 1:
            spans[-1] = (spans[-1][0], line)
        else:
            spans.append((line, line))
    return spans


def to_markdown(result: GateResult) -> str:
    """A report that reads well as a PR comment or in ``$GITHUB_STEP_SUMMARY``."""
    icon = ":white_check_mark:" if result.passed else ":x:"
    state = "passed" if result.passed else "failed"
    tree = f" on tree `{result.tree[:12]}`" if result.tree else ""
    lines = [
        f"### {icon} Gate `{result.gate}` {state}{tree}",
        "",
        "| condition | actual | threshold | verdict |",
        "| --- | ---: | ---: | :---: |",
    ]
    for name, actual, threshold, mark in table_rows(result):
        symbol = ":white_check_mark:" if mark == "pass" else ":x:"
        lines.append(f"| `{name}` | {actual} | {threshold} | {symbol} |")
    details = failure_details(result)
    if details:
        lines += [
            "",
            "<details><summary>Details</summary>",
            "",
            "```",
            *details,
            "```",
            "</details>",
        ]
    return "\n".join(lines) + "\n"


def to_junit(result: GateResult) -> str:
    """One testcase per condition, so CI test views list each gate condition."""
    failures = sum(1 for condition in result.conditions if not condition.passed)
    suite = ElementTree.Element(
        "testsuite",
        name=f"worktree-gates.{result.gate}",
        tests=str(len(result.conditions)),
        failures=str(failures),
        errors="0",
    )
    for condition in result.conditions:
        case = ElementTree.SubElement(
            suite, "testcase", classname=f"worktree-gates.{result.gate}", name=condition.name
        )
        if not condition.passed:
            message = (
                f"{show_actual(condition, result.precision)} "
                f"(threshold {show_threshold(condition, result.precision)})"
            )
            failure = ElementTree.SubElement(case, "failure", message=message)
            failure.text = json.dumps(dict(condition.details), indent=2, default=str)
    root = ElementTree.Element("testsuites")
    root.append(suite)
    return ElementTree.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def to_json(result: GateResult) -> str:
    return json.dumps(result.to_json(), indent=2) + "\n"


RENDERERS = {"json": to_json, "junit": to_junit, "markdown": to_markdown}


def write(result: GateResult, kind: str, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(RENDERERS[kind](result), encoding="utf-8")


def github_annotations(result: GateResult, prefix: str = "") -> list[str]:
    """Workflow commands that mark uncovered changed lines in a pull request's diff.

    ``prefix`` is the project's folder inside the repo: GitHub wants repo-relative paths.
    """
    lines = []
    for condition in result.conditions:
        if condition.name != "coverage.diff":
            continue
        for name, missing in dict(condition.details.get("uncovered", {})).items():
            for start, end in ranges(missing):
                span = f"line={start},endLine={end}"
                lines.append(
                    f"::warning file={prefix}{name},{span},title=Uncovered change::"
                    f"Changed lines {start}-{end} are not covered by the {result.gate} gate's tests"
                    if start != end
                    else f"::warning file={prefix}{name},{span},title=Uncovered change::"
                    f"Changed line {start} is not covered by the {result.gate} gate's tests"
                )
    return lines
