"""Every message the engine raises to a person is a translatable ``M(...)``.

A user-facing error (validation, refused change, forbidden, bad query, stage or pool
refusal, unreadable import file, coercion) whose message is a plain string literal
or f-string would reach a Chinese page in English, and the catalog test
(tests/ui/test_i18n.py) cannot see it, since only ``M("...")`` templates are
extracted. This test reads engine/ and fails on such a raise, or on a field error
``errors[...] = "..."`` that is not wrapped. Programmer errors
(``UnitOfWorkError``: misuse of the API) and the CLI's own (``SeedError``, for
developers seeding test data) are never shown on a page and are left out.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from tests.conftest import REPO_ROOT

#: Error class -> (position, keyword) of the argument that carries the message.
MESSAGE_ARGUMENT: dict[str, tuple[int | None, str]] = {
    "ValidationError": (1, "field_errors"), "ChangeRefused": (1, "field_errors"),
    "ForbiddenError": (2, "reason"), "QueryError": (2, "message"),
    "StageTransitionError": (None, "message"), "PoolLimitError": (None, "message"),
    "ImportFileError": (0, "message"), "CoercionError": (0, "message"),
    "ConditionError": (0, "message"),
}


def _plain_literals(node: ast.AST) -> Iterator[ast.AST]:
    """String literals and f-strings in ``node`` outside any ``M(...)`` call."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "M":
        return
    if isinstance(node, ast.JoinedStr) or \
            isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.strip():
        yield node
        return
    # In another call only a formatted template is a message ("...".format(x)); the
    # rest are keys and separators (row.get("owner_id"), ", ".join(names)).
    if isinstance(node, ast.Call):
        func = node.func
        formatted = isinstance(func, ast.Attribute) and func.attr == "format"
        children = [func.value] if formatted else []  # type: ignore[union-attr]
    elif isinstance(node, ast.Dict):
        children = node.values  # the keys are field names
    elif isinstance(node, ast.DictComp):
        children = [node.value]
    else:
        children = list(ast.iter_child_nodes(node))
    for child in children:
        if child is not None:
            yield from _plain_literals(child)


def _message_argument(call: ast.Call) -> ast.AST | None:
    name = call.func.id if isinstance(call.func, ast.Name) else \
        call.func.attr if isinstance(call.func, ast.Attribute) else ""
    if name not in MESSAGE_ARGUMENT:
        return None
    position, keyword = MESSAGE_ARGUMENT[name]
    found = call.args[position] if position is not None and len(call.args) > position else None
    return next((k.value for k in call.keywords if k.arg == keyword), found)


def unwrapped_messages(source: str, filename: str) -> list[str]:
    """``file:line: text`` of each user-facing message in ``source`` not built with M()."""
    out = []
    for node in ast.walk(ast.parse(source)):
        target: ast.AST | None = None
        if isinstance(node, ast.Call):
            target = _message_argument(node)
        elif isinstance(node, ast.Assign) and len(node.targets) == 1 and \
                isinstance(node.targets[0], ast.Subscript) and \
                isinstance(node.targets[0].value, ast.Name) and \
                node.targets[0].value.id == "errors":
            target = node.value
        if target is not None:
            out += [f"{filename}:{lit.lineno}: {ast.unparse(lit)[:80]}"  # type: ignore[attr-defined]
                    for lit in _plain_literals(target)]
    return out


def test_every_user_facing_engine_message_is_translatable() -> None:
    found = []
    for path in sorted((REPO_ROOT / "engine").rglob("*.py")):
        found += unwrapped_messages(path.read_text(encoding="utf-8"),
                                    str(path.relative_to(REPO_ROOT)))
    assert found == [], "wrap these in engine.messages.M(...) and translate them:\n" + \
        "\n".join(found)


def test_the_scan_catches_each_form_of_an_unwrapped_message() -> None:
    """The scan itself: each way an English message could slip through is caught, and
    the wrapped forms are not."""
    bad = '''
raise ValidationError("user", {"login": "already taken"})
raise ForbiddenError(entity, "lock", f"pool {name} allows no locks")
raise QueryError(entity, "period", "team or all")
raise PoolLimitError(entity, 1, limit="locked", message="it is locked already")
raise ImportFileError("the file is empty")
raise CoercionError(f"at most {n}")
errors["name"] = "required"
raise QueryError(entity, "pool", "choose the pool: " + ", ".join(names))
raise ValidationError(entity, {"x": "at most {} characters".format(n)})
'''
    assert len(unwrapped_messages(bad, "bad.py")) == 9
    good = '''
raise ValidationError("user", {"login": M("%(login)s is already taken", login=x)})
raise QueryError(entity, "period", M("team or all"))
raise NotFoundError("export", "csv")
errors["name"] = M("required")
errors[key] = message_of(exc)
'''
    assert unwrapped_messages(good, "good.py") == []


def test_wrapped_engine_messages_read_in_chinese() -> None:
    """A few of the newly wrapped kinds, raised for real and shown as the UI shows them."""
    import pytest

    from engine.errors import ValidationError
    from engine.messages import message_of
    from engine.permissions.passwords import check_password_rules
    from engine.workflow.import_files import ImportFileError, read_table
    from ui.i18n import translate

    with pytest.raises(ImportFileError) as bad_file:
        read_table(b"", filename="people.csv")
    assert translate("zh-CN", message_of(bad_file.value)) == "文件为空"
    with pytest.raises(ValidationError) as short:
        check_password_rules("abc")
    assert translate("zh-CN", short.value.field_errors["password"]).startswith("至少 ")
    assert Path  # the module's own import stays used
