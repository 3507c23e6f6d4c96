"""The records service: every read and write of entity rows goes through here."""

from engine.records.activity import ActivityEntry, Change
from engine.records.coerce import CoercionError, InputSource, coerce, to_json, to_string
from engine.records.query import Filter, ListQuery, Op, Page, Sort
from engine.records.record import Record
from engine.records.service import RecordService, utc_now

__all__ = [
    "ActivityEntry", "Change", "CoercionError", "Filter", "InputSource", "ListQuery", "Op", "Page",
    "Record", "RecordService", "Sort", "coerce", "to_json", "to_string", "utc_now",
]
