"""The words of the metadata model as admins read them: actions, row scopes, entity
features, field types and stage kinds.

Metadata stores identifiers (``read``, ``subtree``, ``pooled``, ``geo_point``...);
screens show these labels instead, translated like every UI text. Templates use
``{{ word|vocab }}``; a word not listed here is shown as it is.
"""

from __future__ import annotations

from collections.abc import Mapping

from ui.i18n import N_, t

VOCABULARY: Mapping[str, str] = {
    # actions
    "read": N_("read"), "create": N_("create"), "update": N_("update"), "delete": N_("delete"),
    "export": N_("export"), "import": N_("import"), "assign": N_("assign"),
    "claim": N_("claim"), "return": N_("return to pool"), "recycle": N_("recycle bin"),
    "merge": N_("merge"), "configure": N_("configure"), "comment": N_("comment"),
    "share": N_("share"), "restore": N_("restore"), "convert": N_("convert"),
    # row scopes
    "own": N_("own records"), "department": N_("own department"),
    "subtree": N_("department and below"), "pool": N_("pool"), "shared": N_("shared with them"),
    "all": N_("all records"),
    # entity features
    "owned": N_("owned"), "pooled": N_("pooled"), "pipelined": N_("pipelined"),
    "activity": N_("activity feed"), "soft_delete": N_("recycle bin"),
    # field types
    "text": N_("text"), "long_text": N_("long text"), "integer": N_("integer"),
    "decimal": N_("decimal"), "money": N_("money"), "percent": N_("percent"),
    "boolean": N_("yes/no"), "date": N_("date"), "datetime": N_("date and time"),
    "select": N_("select"), "multi_select": N_("multiple select"),
    "reference": N_("reference"), "user": N_("user"), "email": N_("email"),
    "phone": N_("phone"), "url": N_("web address"), "geo_point": N_("location"),
    "address": N_("address"), "rich_text": N_("rich text"), "rating": N_("rating"),
    "file": N_("file"), "auto_number": N_("auto number"),
    # stage kinds
    "open": N_("open"), "won": N_("won"), "lost": N_("lost"),
}


def vocab(locale: str, word: object) -> str:
    """The label of a metadata word in ``locale`` (the word itself when unknown)."""
    text = str(getattr(word, "value", word))
    label = VOCABULARY.get(text)
    return t(locale, label) if label is not None else text
