"""The glossary holds: no Chinese string of the product says a forbidden variant.

Every Python source of ``bot/``, ``models/``, ``reports/``, ``scheduler/`` and ``qcbot/`` is read
with :mod:`ast`; every string constant and every f-string that holds a Chinese character is
checked against :data:`models.wording.FORBIDDEN` (docstrings and comments are not text for
people and are skipped). An f-string is checked as a whole, its placeholders standing for a
number (``第{no}阶段`` reads ``第0阶段``), or for an ISO date when the placeholder is one
(``{d.isoformat()}``, ``{d:%Y-%m-%d}``). A date formatted into a variable first is out of the
scan's sight: those go through ``models.wording`` by review.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from models import wording

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("infra", "bot", "models", "reports", "scheduler", "qcbot")
CJK = re.compile(r"[\u4e00-\u9fff]")
ISO_SAMPLE = "2026-12-02"

ISO_RULE = wording.FORBIDDEN[4][0]
#: (path, rule, a piece of the string or "" for every string of the file) → why the variant is
#: right there. Keep it short.
ALLOWED: dict[tuple[str, str, str], str] = {
    # What to TYPE, not what the bot says: a date argument is read in ISO form too.
    ("bot/parsing.py", ISO_RULE, "例如 2021-12-31"): "a typing example of a date argument",
    # Errors in the operator's calendar file (TOML) quote its entries as written there.
    ("models/calendar.py", ISO_RULE, ""): "the dates of data/calendar/YEAR.toml, as written in it",
}


def _is_docstring(node: ast.AST, parents: dict[int, ast.AST]) -> bool:
    parent = parents.get(id(node))
    if not isinstance(parent, ast.Expr):
        return False
    owner = parents.get(id(parent))
    body = getattr(owner, "body", None)
    return isinstance(owner, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and \
        bool(body) and body[0] is parent


def _placeholder(value: ast.FormattedValue) -> str:
    expr, spec = value.value, value.format_spec
    if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Name) and expr.func.id == "cn_number":
        return "一"  # the glossary's Chinese numeral
    if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute):
        if expr.func.attr == "isoformat":
            return ISO_SAMPLE
        if expr.func.attr == "strftime" and expr.args and isinstance(expr.args[0], ast.Constant) \
                and "%Y-%m-%d" in str(expr.args[0].value):
            return ISO_SAMPLE
    if spec is not None and "%Y-%m-%d" in ast.unparse(spec):
        return ISO_SAMPLE
    return "0"


def chinese_strings(path: Path) -> list[tuple[int, str]]:
    """(line, text) of every string constant and f-string of ``path`` that holds Chinese."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    parents = {id(child): node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    inside_fstring = {id(v) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr)
                      for v in ast.walk(node) if v is not node}
    # The glossary's own table of forbidden variants is the rules, not text.
    rules = {id(v) for node in ast.walk(tree) if isinstance(node, ast.AnnAssign | ast.Assign)
             and "FORBIDDEN" in ast.unparse(node.target if isinstance(node, ast.AnnAssign) else node.targets[0])
             for v in ast.walk(node)}
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if id(node) in rules:
            continue
        if isinstance(node, ast.JoinedStr) and id(node) not in inside_fstring:
            text = "".join(v.value if isinstance(v, ast.Constant) else _placeholder(v)  # type: ignore[arg-type]
                           for v in node.values)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in inside_fstring:
            if _is_docstring(node, parents):
                continue
            text = node.value
        else:
            continue
        if CJK.search(text):
            found.append((node.lineno, text))
    return found


def sources() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def hits() -> list[str]:
    rules = [(re.compile(pattern), instead) for pattern, instead in wording.FORBIDDEN]
    problems: list[str] = []
    for path in sources():
        rel = path.relative_to(ROOT).as_posix()
        allowed = [(rule, piece) for (where, rule, piece) in ALLOWED if where == rel]
        for line, text in chinese_strings(path):
            for rx, instead in rules:
                m = rx.search(text)
                if m and not any(rule == rx.pattern and piece in text for rule, piece in allowed):
                    context = text[max(0, m.start() - 12): m.end() + 12]
                    problems.append(f"{rel}:{line}: {m.group(0)!r} in {context!r} → {instead}")
    return problems


def test_no_forbidden_variant_in_any_chinese_string() -> None:
    problems = hits()
    assert not problems, "forbidden wording (see models/wording.py, the glossary):\n" + "\n".join(problems)


def test_every_allowance_is_still_needed() -> None:
    texts = {path.relative_to(ROOT).as_posix(): [t for _, t in chinese_strings(path)] for path in sources()}
    stale = [f"{where}: {piece!r}" for (where, rule, piece) in ALLOWED
             if not any(piece in t and re.search(rule, t) for t in texts.get(where, []))]
    assert not stale, "allow-list entries that match nothing any more:\n" + "\n".join(stale)


@pytest.mark.parametrize(("text", "bad"), [
    ("请联系协调人", True), ("🚩 第2阶段开始", True), ("阶段「全面创建」", True), ("可得 4 · 已失 2", True),
    ("截至 2026-12-02", True), ("截至 12月2日（2026年）", True), ("错误: 文件", True), ("单位,任务", True),
    ("请联系协调员", False), ("第二阶段“全面创建”", False), ("已失分 2", False), ("按钮已失效", False),
    ("截至2026年12月2日", False), ("错误：文件", False), ("12月2日 09:30", False), ("PDF, Word", False),
])
def test_the_rules_catch_the_variants_of_issue_17(text: str, bad: bool) -> None:
    assert any(re.search(p, text) for p, _ in wording.FORBIDDEN) is bad


def test_glossary_helpers() -> None:
    assert [wording.phase_name(n) for n in (1, 2, 3, 4, 10, 12)] == \
        ["第一阶段", "第二阶段", "第三阶段", "第四阶段", "第十阶段", "第十二阶段"]
    assert wording.quoted("全面创建") == "“全面创建”"
    assert (wording.COORDINATOR, wording.LIAISON, wording.LEADER, wording.LOST, wording.PENDING) == \
        ("协调员", "联络员", "领导", "已失分", "待审核")
