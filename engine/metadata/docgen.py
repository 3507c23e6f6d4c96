"""Generate the consultants' metadata reference (docs/reference/) from schemas/.

The schemas are the reference: every property carries its description there,
so the pages are rendered from them rather than written beside them and left
to drift. A test fails when the committed pages differ from what this module
renders. Regenerate with ``python -m engine.metadata.docgen``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.metadata.schema_check import SCHEMA_FILES, _schemas

REFERENCE_DIR = Path(__file__).resolve().parents[2] / "docs" / "reference"

#: Page order and where each document kind lives in a package.
PAGES: tuple[tuple[str, str], ...] = (
    ("manifest", "app.json"),
    ("entity", "entities/<name>.json"),
    ("pipeline", "pipelines/<name>.json"),
    ("pool", "pools/<name>.json"),
    ("role", "roles/<name>.json"),
    ("overlay", "overlays/<name>.json"),
    ("report", "reports/<name>.json"),
    ("dashboard", "dashboards/<name>.json"),
    ("leaderboard", "leaderboards/<name>.json"),
    ("conversion", "conversions/<name>.json"),
)
_PAGE_OF_FILE = {file: kind for kind, file in SCHEMA_FILES.items()}
# Shared building blocks are described inline rather than linked.
_COMMON_NAMES = {
    "identifier": "name",
    "identifier_list": "list of names",
    "label": "label (en, zh-CN, ...)",
    "text": "localised text",
    "schema_uri": "string",
}


_ARTICLED = {"string": "a string", "integer": "an integer", "number": "a number",
             "boolean": "true or false", "array": "a list", "object": "an object"}


@dataclass
class _Page:
    kind: str
    file: str
    queue: list[tuple[str, Mapping[str, Any]]] = field(default_factory=list)
    done: set[str] = field(default_factory=set)

    def want(self, title: str, schema: Mapping[str, Any]) -> str:
        """Queue a section for an object schema; return its anchor."""
        if title not in self.done:
            self.done.add(title)
            self.queue.append((title, schema))
        return _anchor(title)


def _anchor(title: str) -> str:
    return title.lower().replace(" ", "-")


def _resolve(ref: str, file: str) -> tuple[Mapping[str, Any], str, str]:
    """(schema, file, last pointer segment) a $ref points at."""
    target_file, _, fragment = ref.partition("#")
    target_file = target_file or file
    node: Any = _schemas()[target_file]
    parts = [p for p in fragment.split("/") if p]
    for part in parts:
        node = node[part]
    return node, target_file, parts[-1] if parts else target_file


def _type_of(schema: Mapping[str, Any], page: _Page, *, title: str) -> str:
    if "$ref" in schema:
        target, file, last = _resolve(schema["$ref"], page.file)
        if file == "common.schema.json" and last in _COMMON_NAMES:
            return _COMMON_NAMES[last]
        if "properties" in target and file == page.file:
            return f"object, see [{last}](#{page.want(last, target)})"
        if "properties" in target:
            return f"object, see [{last}]({_PAGE_OF_FILE[file]}.md#{_anchor(last)})"
        return _type_of(target, _Page(page.kind, file), title=title)
    if "enum" in schema:
        return "one of " + ", ".join(f"`{v}`" for v in schema["enum"])
    kind = schema.get("type")
    if kind == "array":
        return "list of " + _type_of(schema.get("items", {}), page, title=title)
    if kind == "object" and "properties" in schema:
        return f"object, see [{title}](#{page.want(title, schema)})"
    if kind == "object":
        extra = schema.get("additionalProperties")
        if isinstance(extra, Mapping):
            return "object: key → " + _type_of(extra, page, title=title)
        return "object"
    if kind is None:
        return "any (see description)"
    return str(kind)


def _rules(schema: Mapping[str, Any]) -> str:
    rules = []
    for key, text in (("pattern", "matches `{}`"), ("minimum", "≥ {}"), ("maximum", "≤ {}"),
                      ("minLength", "at least {} characters"),
                      ("maxLength", "at most {} characters"), ("minItems", "at least {} items"),
                      ("minProperties", "at least {} entries")):
        if key in schema:
            rules.append(text.format(schema[key]))
    if schema.get("uniqueItems"):
        rules.append("no duplicates")
    return "; ".join(rules)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _section(title: str, schema: Mapping[str, Any], page: _Page, *, level: int) -> Iterator[str]:
    yield f"{'#' * level} {title}"
    yield ""
    if schema.get("description"):
        yield str(schema["description"])
        yield ""
    required = set(schema.get("required") or ())
    yield "| Property | Type | Required | Rules | Description |"
    yield "|---|---|---|---|---|"
    for name, prop in schema["properties"].items():
        yield "| " + " | ".join(_cell(x) for x in (
            f"`{name}`", _type_of(prop, page, title=name), "yes" if name in required else "",
            _rules(prop), str(prop.get("description", "")))) + " |"
    yield ""
    conditional = list(_conditional_rules(schema))
    if conditional:
        yield "Rules that depend on other properties:"
        yield ""
        yield from (f"- {line}" for line in conditional)
        yield ""


def _conditional_rules(schema: Mapping[str, Any]) -> Iterator[str]:
    """Plain sentences for the if/then rules of an object schema."""
    for rule in schema.get("allOf") or ():
        cond = rule.get("if", {}).get("properties", {})
        then = rule.get("then", {})
        if len(cond) != 1:
            continue
        (key, test), = cond.items()
        negated = "not" in test
        test = test.get("not", test)
        values = test.get("enum") or [test.get("const")]
        shown = ", ".join(f"`{v}`" for v in values)
        forbidden = [p for p, s in then.get("properties", {}).items() if s == {"not": {}}]
        constrained = {p: s for p, s in then.get("properties", {}).items() if s != {"not": {}}}
        props = ", ".join(f"`{p}`" for p in forbidden)
        if forbidden and negated:
            yield f"{props}: only when `{key}` is {shown}."
        elif forbidden:
            yield f"{props}: not allowed when `{key}` is {shown}."
        if then.get("required"):
            req = ", ".join(f"`{p}`" for p in then["required"])
            yield f"{req}: required when `{key}` is {shown}."
        for prop, sub in constrained.items():
            detail = ", ".join(filter(None, [
                _ARTICLED.get(sub.get("type", ""), ""), _rules(sub)]))
            yield f"`{prop}` when `{key}` is {shown}: {detail}."


def render_page(kind: str, location: str) -> str:
    """The markdown reference page of one document kind."""
    file = SCHEMA_FILES[kind]
    schema = _schemas()[file]
    page = _Page(kind, file)
    lines = [f"# {schema['title']}", "",
             "<!-- Generated from schemas/" + file + " by engine/metadata/docgen.py; "
             "do not edit by hand. -->", "",
             f"Location in a package: `{location}`. Schema: `schemas/{file}`.", "",
             str(schema["description"]), ""]
    if "oneOf" in schema:
        lines += ["The document takes exactly one of these forms:", ""]
        for branch in schema["oneOf"]:
            target, _, last = _resolve(branch["$ref"], file)
            lines.append(f"- [{last}](#{page.want(last, target)}): {target['description']}")
        lines.append("")
    else:
        page.want("Document", {**schema, "description": ""})
    # Sections in the order a reader meets them; definitions nothing links to go last.
    leftovers = [(n, d) for n, d in (schema.get("$defs") or {}).items() if "properties" in d]
    while page.queue or leftovers:
        if not page.queue:
            page.want(*leftovers.pop(0))
            continue
        title, sub = page.queue.pop(0)
        lines += list(_section(title, sub, page, level=2))
    return "\n".join(lines).rstrip() + "\n"


def render_index() -> str:
    lines = ["# Metadata reference", "",
             "<!-- Generated by engine/metadata/docgen.py; do not edit by hand. -->", "",
             ("One page per document kind of an app package (see [../packages.md]"
             "(../packages.md) for the folder layout). Labels are objects from locale to "
             "text and need at least `en` and `zh-CN`; names are lower-case identifiers "
             "(`^[a-z][a-z0-9_]{0,62}$`) that are not SQL reserved words."), ""]
    for kind, location in PAGES:
        title = _schemas()[SCHEMA_FILES[kind]]["title"]
        lines.append(f"- [{title}]({kind}.md): `{location}`")
    return "\n".join(lines) + "\n"


def render_reference() -> dict[str, str]:
    """File name -> markdown for every reference page (and the index README.md)."""
    pages = {f"{kind}.md": render_page(kind, location) for kind, location in PAGES}
    pages["README.md"] = render_index()
    return pages


def write_reference(out_dir: Path = REFERENCE_DIR) -> list[Path]:
    """Write the rendered pages into ``out_dir``; return the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render_reference().items():
        path = out_dir / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def main() -> int:
    for path in write_reference():
        sys.stdout.write(f"wrote {path}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
