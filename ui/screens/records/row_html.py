"""A list page's rows as HTML, drawn by per-column formatters compiled once.

Drawing 50 rows through Jinja (a loop per cell, conditions, a filter and an
escape per attribute) was half of the list page's CPU (issue 13). ``RowDrawer``
is built once per entity, column set and locale (``row_drawer`` keeps the
drawers of the current registry): each column gets a function from a value
to its escaped cell, labels and attribute text are escaped once, and a row is
one f-string compiled for the column set (``_row_function``). Every value and URL still goes through markupsafe's
``escape`` (the same escaping as the templates' autoescape); the markup
around them is fixed text. Times are formatted at draw time, in the viewer's
zone of the request (``ui.zones``), so a drawer is shared across zones.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from markupsafe import Markup, escape

from engine.memo import GenerationMemo
from engine.metadata.model import Field, FieldType, Registry
from engine.records.record import Record
from ui.i18n import t
from ui.screens.records.display import Names, display, phone_link

#: A column's cell from a record's value: (escaped text, escaped link or "").
CellFormatter = Callable[[Any, Names], tuple[str, str]]
#: Drawers kept per registry before starting over (a bound, not an LRU).
MAX_DRAWERS = 500
#: The class of an empty card field (the phone layout hides its label).
BLANK = ' class="blank"'


#: The characters markupsafe's ``escape`` replaces (and nothing else).
_SPECIAL = re.compile(r"[&<>\"']")


def _esc(text: object) -> str:
    """``str(escape(text))``, without making a ``Markup`` for the common plain string
    with nothing to escape (most cells): the same text either way."""
    if type(text) is str and _SPECIAL.search(text) is None:
        return text
    return str(escape(text))


def _linked(f: Field, locale: str, link_of: Callable[[str], str]) -> CellFormatter:
    """A text cell that links to ``link_of(text)`` (a phone's ``tel:``, an e-mail's
    ``mailto:``; ``""`` for no link); a value that is not text is drawn as ``display``."""
    def linked(value: Any, names: Names) -> tuple[str, str]:
        if not isinstance(value, str) or not value:
            return ("", "") if value is None or value == "" else \
                (_esc(display(f, value, locale, names)), "")
        link = link_of(value)
        return _esc(value), (_esc(link) if link else "")
    return linked


def _formatter(f: Field, locale: str) -> CellFormatter:
    """The cell of one column: text and link, both escaped. Common types get a
    direct path; the rest go through ``display`` as the detail page does."""
    typ = f.type
    if typ is FieldType.SELECT:
        labels = {o.value: _esc(o.label.get(locale) or o.value) for o in f.options}

        def select(value: Any, names: Names) -> tuple[str, str]:
            if value is None or value == "":
                return "", ""
            found = labels.get(value) if isinstance(value, str) else None
            return (found if found is not None else _esc(value)), ""
        return select
    if typ is FieldType.REFERENCE:
        target = f.target or ""

        def reference(value: Any, names: Names) -> tuple[str, str]:
            if value is None or value == "":
                return "", ""
            title = names.title(target, int(value))
            if title:
                return _esc(title), _esc(f"/e/{target}/{value}")
            return f"#{_esc(value)}", ""
        return reference
    if typ is FieldType.USER:
        def user(value: Any, names: Names) -> tuple[str, str]:
            return ("", "") if value is None or value == "" else \
                (_esc(names.person(int(value))), "")
        return user
    if typ is FieldType.PHONE:  # a tap on a phone dials it
        return _linked(f, locale, lambda v: phone_link(v) if v.strip() else "")
    if typ is FieldType.EMAIL:
        return _linked(f, locale, lambda v: f"mailto:{v.strip()}" if "@" in v else "")
    if typ in (FieldType.TEXT, FieldType.URL, FieldType.AUTO_NUMBER):
        def text(value: Any, names: Names) -> tuple[str, str]:
            if isinstance(value, str):
                return _esc(value), ""
            return ("", "") if value is None else (_esc(display(f, value, locale, names)), "")
        return text

    def other(value: Any, names: Names) -> tuple[str, str]:
        return _esc(display(f, value, locale, names)), ""
    return other


#: A row's markup from (id, its values, names, badge text or None, claim cell or "").
RowFunction = Callable[[int, Mapping[str, Any], Names, "str | None", str], str]
#: The field types whose cells may link (the others' formatters always give no link).
_LINKING = frozenset({FieldType.REFERENCE, FieldType.PHONE, FieldType.EMAIL})


@dataclass(frozen=True)
class RowDrawer:
    """Draws the ``<tr>`` rows of one entity's list for one column set and locale.

    The markup matches what ``records/_rows.html`` drew cell by cell: the row's
    checkbox, the title cell linking to the record (with its drop badge), then
    each column with its label for the phone card layout (``data-label``), the
    first three as the card's fields and the rest ``minor``.
    """

    entity: str
    names: tuple[str, ...]  # the columns' field names, the title field first
    formatters: tuple[CellFormatter, ...]
    openings: tuple[str, ...]  # "<td ...>" of each column but the first, text not blank
    blank_openings: tuple[str, ...]  # the same when the cell's text is blank
    select_label: str
    claim_label: str
    #: One row's markup, compiled for these columns (``_row_function``).
    row: RowFunction = field(compare=False)

    def draw(self, records: Sequence[Record], names: Names, *, claim: bool,
             claim_ids: frozenset[int] = frozenset(),
             badges: Mapping[int, str] | None = None) -> Markup:
        """The rows for ``records``; ``claim`` adds the pool-actions cell."""
        out: list[str] = []
        append = out.append
        row = self.row
        base = f"/e/{_esc(self.entity)}/"
        for record in records:
            values = record.mapping()
            rid = int(values["id"])
            cell = ""
            if claim:
                cell = '<td class="row-actions">' + (
                    f'<button type="submit" class="small" formaction="{base}{rid}/claim" '
                    f'formnovalidate name="next" value="list">{self.claim_label}</button>'
                    if rid in claim_ids else "") + "</td>"
            append(row(rid, values, names, badges.get(rid) if badges else None, cell))
        return Markup("".join(out))


def _row_function(entity: str, columns: Sequence[Field], formatters: Sequence[CellFormatter],
                  openings: Sequence[str], blanks: Sequence[str],
                  select_label: str) -> RowFunction:
    """One row as a single f-string, compiled for a column set: a loop over cells, a
    tuple per cell and a string per cell joined at the end were a third of the rows'
    drawing. The source holds only generated names; every label, field name and
    opening is a value in the function's namespace, so no metadata text is ever
    read as code."""
    namespace: dict[str, Any] = {"esc": _esc, "BASE": f"/e/{_esc(entity)}/",
                                 "SELECT": select_label}
    # ``NL`` in the templates below is the two characters of an f-string's newline escape
    body = ["t0 = F0(values.get(N0), names)[0]"]
    cells = []
    for i, f in enumerate(columns):
        namespace[f"F{i}"], namespace[f"N{i}"] = formatters[i], f.name
        if i == 0:
            continue
        namespace[f"O{i}"], namespace[f"B{i}"] = openings[i - 1], blanks[i - 1]
        opening = f"(O{i} if t{i} else B{i})"
        if f.type in _LINKING:
            body.append(f"t{i}, l{i} = F{i}(values.get(N{i}), names)")
            body.append(f"c{i} = (f'{{{opening}}}<a href=\"{{l{i}}}\">{{t{i}}}</a>' "
                        f"if l{i} else {opening} + t{i})")
            cells.append(f"  {{c{i}}}</td>NL")
        else:
            body.append(f"t{i} = F{i}(values.get(N{i}), names)[0]")
            cells.append(f"  {{{opening}}}{{t{i}}}</td>NL")
    head = ("f'<tr id=\"row-{rid}\">NL  <td class=\"select\"><input type=\"checkbox\" "
            "name=\"ids\" value=\"{rid}\" form=\"bulk\" aria-label=\"{SELECT} #{rid}\"></td>NL"
            "  <td class=\"title\"><a href=\"{BASE}{rid}\">{t0 or f\"#{rid}\"}</a>'")
    badge = "(f' <span class=\"tag drop-due\">{esc(badge)}</span>' if badge else '')"
    tail = "f'</td>NL" + "".join(cells) + "{claim}</tr>NL'"
    body.append(f"return {head} + {badge} + {tail}")
    lines = ["def row(rid, values, names, badge, claim):"]
    lines += ["    " + line.replace("NL", "\\n") for line in body]
    exec("\n".join(lines), namespace)  # noqa: S102 - generated names only (see above)
    function: RowFunction = namespace["row"]
    return function


def _build(entity: str, columns: Sequence[Field], locale: str) -> RowDrawer:
    openings, blanks = [], []
    for index, f in enumerate(columns[1:], start=1):
        label = f' data-label="{_esc(f.label.get(locale))}"'
        minor = ' class="minor"' if index > 3 else ""
        openings.append(f"<td{label}{minor}>")
        blanks.append(f"<td{label}{minor or BLANK}>")
    formatters = tuple(_formatter(f, locale) for f in columns)
    select_label = _esc(t(locale, "Select"))
    return RowDrawer(entity, tuple(f.name for f in columns), formatters, tuple(openings),
                     tuple(blanks), select_label, _esc(t(locale, "Claim")),
                     _row_function(entity, columns, formatters, openings, blanks, select_label))


_drawers: GenerationMemo[tuple[str, tuple[str, ...], str], RowDrawer] = \
    GenerationMemo(limit=MAX_DRAWERS)


def row_drawer(registry: Registry, entity: str, columns: Sequence[Field],
               locale: str) -> RowDrawer:
    """The drawer for these columns, built once per registry (labels and options
    come from the metadata, so a new registry starts over)."""
    key = (entity, tuple(f.name for f in columns), locale)
    return _drawers.get(registry, key, lambda: _build(entity, columns, locale))
