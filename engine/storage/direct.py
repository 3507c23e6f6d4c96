"""One cached SELECT run straight on a pooled DBAPI cursor: the hot reads' path.

A point read or a list page is one statement, built once per shape and scope
(``engine/records/_point.py``, ``RecordService._page_statement``). Through a
SQLAlchemy ``Connection`` the same statement cost ~5x its driver work on SQLite
(measured in issue 13: 105 vs 20 µs for a point read): the ``Connection`` and its
transaction objects, the ``BEGIN``/``ROLLBACK`` pair around one SELECT, the
execution context and the ``Row`` objects. Here the statement is compiled once
(SQLAlchemy's compiler, so the SQL and the bound parameters are exactly what
``Connection.execute`` would send; no SQL is built from strings), then each call
binds its parameters, runs it on a pooled DBAPI connection and applies the column
types' result processors in one pass, giving plain tuples.

What a ``Connection`` does that still happens here:

- ``before_cursor_execute`` / ``after_cursor_execute`` listeners run with the
  pooled connection (its ``info`` is the ``Connection``'s) and ``context=None``:
  the SQLite statement timeout (``engine/storage/database.py``) and the
  statement counters of the tests and benchmarks keep working;
- a DBAPI error is raised as SQLAlchemy's wrapped error, a statement timeout as
  ``StatementTimeoutError``, and a connection the database dropped is invalidated;
- the pool's checkout, reset and return.

One statement is atomic on its own, so no transaction is opened around it: SQLite's
driver already runs in autocommit mode (``make_engine``), and a PostgreSQL
connection is switched to autocommit for the call (no round trips for
``BEGIN`` and the pool's ``ROLLBACK``) and back before it returns to the pool.

On PostgreSQL (psycopg) the statement is also kept plannable once. psycopg prepares a
statement after a few executions on a connection, keyed by its SQL and its parameters'
types, and the server then reuses one generic plan only if its estimated cost is no
worse than that of the plans made for each call's values; otherwise it plans every call
again (a custom plan). A list page never got its generic plan (issue 13: 0 generic
against every call custom in ``pg_prepared_statements``), for two reasons, both
removed here and nowhere else (``Connection.execute`` sends what SQLAlchemy sends):

- its LIMIT (the page size plus one, fixed in each cached page statement) was a
  parameter, and a generic plan's LIMIT is unknown, so its cost looked far higher. A
  LIMIT or OFFSET the statement holds as an int is written into the SQL as that int
  (``_LiteralLimits``: the Integer type's literal rendering of a value that is an
  ``int``, never request text; one bound per call stays a parameter);
- psycopg sends a Python int as the smallest type that holds it (``int2`` for 5,
  ``int4`` for 40000), so a statement's parameter types, and with them its prepared
  statement and plans, changed with the values (a point read of record 20,000 and one
  of record 40,000 were two statements to prepare, each cast to ``bigint`` in its
  plan). An int bound to an integer column type is sent as that type (``Int8`` for
  ``BigInteger``, ``Int4`` for ``Integer``, ``Int2`` for ``SmallInteger``); a value
  outside the type's range goes through ``Connection.execute`` instead, which raises
  what it always raised for such a value (``Int8`` would raise ``OverflowError``).

The first page of a list then runs on its generic plan after about ten calls on a
connection (five until psycopg prepares it, five custom plans the server compares):
PostgreSQL's CPU per first page fell from ~0.20 to ~0.13 ms (bench: 20,000 customers,
a rep's scope). A later page (a keyset position bound per call) is still planned per
call: its row comparison against unknown values is estimated at a third of the rows,
so the generic plan's cost stays about twice the custom plans' and the server keeps
choosing those; only ``plan_cache_mode``, a setting of the whole session, would
override that. A read here opens no transaction, so it never ends in the ROLLBACK at
which psycopg drops every statement prepared on the connection; a read through a
``Connection`` does (which is why the per-request stamp read runs here too,
``engine.permissions.versions.stamps``).

Statements that SQLAlchemy must finish at execution time (expanding ``IN``
parameters, literal-execute parameters) go through ``Connection.execute`` (that
answer is cached like a compiled statement, so a reused page statement is compiled
here once), and so
does everything inside ``through_connection()``: Core-level listeners
(``before_execute``) see those, which tools capturing the Core statement need, and
benchmarks compare both paths with it in one process.
"""

from __future__ import annotations

import itertools
import threading
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, NoReturn, Protocol

from psycopg.types.numeric import Int2, Int4, Int8
from sqlalchemy import BigInteger, Engine, Integer, SmallInteger
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.sql import CompoundSelect, Select
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import BindParameter

from engine.errors import StatementTimeoutError
from engine.scoped import ScopedValue
from engine.storage.database import is_timeout, statement_timeout_of

#: Compiled statements kept (per engine) before the cache starts over.
MAX_COMPILED = 5_000

Converter = Callable[[Sequence[Any]], Any]


class Shape(Protocol):
    """Values built from a row, as Python source (``engine.records._plan.RowShape``)."""

    #: Positions of JSON document columns whose stored text may stand for the value
    #: (an ``orjson.Fragment``: for values written to JSON as they are read).
    documents: frozenset[int]

    def source(self, column: Callable[[int], str]) -> str:
        """The source of one dict display; ``column(i)`` is the source of value i."""
        ...


def _compile(source: str, namespace: dict[str, Any]) -> Converter:
    # Only integer positions, processor names and repr() of registry identifiers.
    exec(f"def convert(row):\n    return {source}\n", namespace)  # noqa: S102
    convert: Converter = namespace["convert"]
    return convert


#: What runs here: one SELECT, or a UNION of them (the drop forecast's rules).
Statement = Select[Any] | CompoundSelect[Any]
_THROUGH_CONNECTION: ContextVar[bool] = ContextVar("tp_through_connection", default=False)


_KEEP: ContextVar[bool] = ContextVar("tp_keep_connection", default=False)


def kept_connection() -> ScopedValue[bool]:
    """Within this block, reads on this thread reuse one pooled connection kept for it.

    For the API's reads on SQLite's event loop (``ui/inline.py``): one thread runs
    them one after another, and the pool's checkout and check-in (a lock, a queue,
    events, a rollback of nothing: SQLite runs each of these statements in autocommit)
    cost a tenth of a point read (issue 13). The connection stays checked out for the
    thread between reads; it is given back after an error, replaced if the engine's
    pool was disposed meanwhile, and given back by ``release_kept`` (the app's
    shutdown). Only for threads that run one read at a time and are few (each keeps a
    connection out of the pool).
    """
    return ScopedValue(_KEEP, True)


@contextmanager
def through_connection() -> Iterator[None]:
    """Within this block, reads take SQLAlchemy's ``Connection.execute`` path instead."""
    token = _THROUGH_CONNECTION.set(True)
    try:
        yield
    finally:
        _THROUGH_CONNECTION.reset(token)


#: psycopg's typed ints per integer column type (subclasses first) and the bits each
#: holds: an int parameter of such a column is sent as its column's type (see the
#: module docstring), whatever its value.
_PG_INTEGERS: tuple[tuple[type[Integer], type[int], int], ...] = (
    (BigInteger, Int8, 63), (SmallInteger, Int2, 15), (Integer, Int4, 31))

#: (parameter name, psycopg type, bits) of each integer parameter of a statement
Integers = tuple[tuple[str, type[int], int], ...]


def _fixed_int(clause: Any) -> bool:
    """``clause`` is a bound parameter holding an int of its own (none bound per call)."""
    return isinstance(clause, BindParameter) and clause.callable is None \
        and type(clause.value) is int


class _LiteralLimits(SQLCompiler):
    """Mixed into PostgreSQL's compiler: a LIMIT (and OFFSET) the statement fixes is
    written into its SQL.

    Only an int the statement itself holds (``.limit(wanted)`` of a page statement built
    once per page size) is written, by the Integer type's literal rendering
    (``str(int(value))``); a limit bound per call (``bindparam("n")``) or computed at
    execution (``callable_``) stays a parameter. See the module docstring: plan stability.
    """

    def limit_clause(self, select: Any, **kw: Any) -> str:
        clauses = [c for c in (select._limit_clause, select._offset_clause) if c is not None]
        if clauses and all(_fixed_int(c) for c in clauses):
            kw["literal_binds"] = True
        return str(super().limit_clause(select, **kw))  # type: ignore[no-untyped-call]


_literal_compilers: dict[type[SQLCompiler], type[SQLCompiler]] = {}


def _literal_limits(base: type[SQLCompiler]) -> type[SQLCompiler]:
    """``base`` (a dialect's statement compiler) writing fixed limits as literals (one
    class per compiler class; two threads racing make two equal ones, both fine)."""
    found = _literal_compilers.get(base)
    if found is None:
        found = _literal_compilers[base] = type(f"LiteralLimits{base.__name__}",
                                                (_LiteralLimits, base), {})
    return found


def _integers(compiled: SQLCompiler, dialect: Dialect) -> Integers:
    """The statement's integer-typed parameters, with the psycopg type each is sent as
    (a name bound in two places as two types is left to psycopg)."""
    found: dict[str, tuple[type[int], int] | None] = {}
    for bind, name in compiled.bind_names.items():
        impl = bind.type.dialect_impl(dialect)
        typed = next(((t, bits) for column_type, t, bits in _PG_INTEGERS
                      if isinstance(impl, column_type)), None)
        found[name] = typed if found.get(name, typed) == typed else None
    return tuple((name, *typed) for name, typed in found.items() if typed is not None)


def _typed(integers: Integers, parameters: dict[str, Any]) -> dict[str, Any] | None:
    """``parameters`` with each int of ``integers`` as its column's psycopg type; None
    if one is out of that type's range (the caller leaves it to ``Connection.execute``,
    which gives the error of such a value)."""
    typed = dict(parameters)
    for name, as_type, bits in integers:
        value = typed.get(name)
        if type(value) is int:
            if not -(1 << bits) <= value < 1 << bits:
                return None
            typed[name] = as_type(value)
    return typed


class _Compiled:
    """A statement compiled for one dialect: SQL, parameter order, result conversion.

    ``compiled`` is None for a statement SQLAlchemy must finish at execution time:
    remembered so that a page statement reused across pages is not compiled again on
    every call only to learn that it goes through ``Connection.execute``.
    """

    __slots__ = ("compiled", "constant", "convert", "fixed", "integers", "lock", "names",
                 "processors", "shaped", "sql", "statement")

    def __init__(self, statement: Statement, compiled: SQLCompiler | None, *,
                 positional: bool, integers: Integers = ()) -> None:
        self.statement = statement  # kept alive: the cache is keyed by its id
        self.compiled = compiled
        self.sql = compiled.string if compiled is not None else ""
        self.names: tuple[str, ...] | None = (
            tuple(compiled.positiontup or ()) if positional and compiled is not None
            else None)
        self.convert: Converter | None = None  # made at the first execution (column types)
        #: each column's result processor (None: as read), known at the first execution
        self.processors: list[Any] | None = None
        self.shaped: dict[Shape, Converter] = {}  # row -> values, per shape
        self.lock = threading.Lock()
        # Executed without parameters of the call's own (a list's first page), a
        # statement whose values are all fixed (no bind computed at execution, as a
        # ``callable_`` one is) sends the same positional parameters every time: made
        # once. Building them (``construct_params`` and the bind processors) was ~2 %
        # of a 50-record API list page on SQLite (issue 13).
        self.constant = compiled is not None and self.names is not None and not any(
            b.callable is not None for b in compiled.binds.values())
        self.fixed: tuple[Any, ...] | None = None
        #: PostgreSQL: the integer parameters, sent typed as their columns (``_typed``)
        self.integers = integers


class _Kept(dict[str, PoolProxiedConnection]):
    """One thread's kept connection (under ``_FAIRY``), reachable from ``release_kept``.

    A dict so that taking the connection is one atomic ``pop``: the thread takes it for
    a read and puts it back after, ``release_kept`` (another thread, at shutdown) takes
    it to give it back, and whichever pops it first owns it. Weakly referenced by its
    reader, so a finished thread's connection goes back with its thread-local as before.
    """

    __slots__ = ("__weakref__",)


_FAIRY = "fairy"


class DirectReader:
    """Runs cached SELECTs of one engine on its pooled DBAPI connections."""

    def __init__(self, engine: Engine) -> None:
        # Weak: the reader is kept per engine and must not keep a dropped engine's pool.
        self._engine = weakref.ref(engine)
        dialect = engine.dialect
        self._positional = dialect.positional
        self._postgres = dialect.name == "postgresql"
        # psycopg on PostgreSQL: fixed limits written in, integers sent typed (plan
        # stability, see the module docstring).
        self._typed = self._postgres and dialect.driver == "psycopg" and not self._positional
        self._compiler = _literal_limits(dialect.statement_compiler) if self._typed \
            else dialect.statement_compiler
        self._cache: dict[int, _Compiled] = {}
        #: the ``Connection.execute`` path's row -> values, per shape (no processors there)
        self._plain: dict[Shape, Converter] = {}
        self._lock = threading.Lock()
        self._kept = threading.local()  # the connection a thread keeps (``kept_connection``)
        #: every thread's ``_Kept``, by a number of its own (a dict is not hashable)
        self._all_kept: weakref.WeakValueDictionary[int, _Kept] = \
            weakref.WeakValueDictionary()
        self._kept_numbers = itertools.count()

    @property
    def engine(self) -> Engine:
        engine = self._engine()
        if engine is None:  # pragma: no cover - readers are reached through their engine
            raise RuntimeError("the engine of this reader is gone")
        return engine

    def rows(self, statement: Statement, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """Every row of ``statement`` (processed as ``Connection.execute`` would) as tuples."""
        return self._read(statement, params, None)

    def values(self, statement: Select[Any], params: Mapping[str, Any],
               shape: Shape) -> list[dict[str, Any]]:
        """Every row of ``statement`` as the dict ``shape`` builds from it: the column
        types' result processors and the shape compiled into one function per row."""
        return self._read(statement, params, shape)

    def _read(self, statement: Statement, params: Mapping[str, Any],
              shape: Shape | None) -> list[Any]:
        found = None if _THROUGH_CONNECTION.get() else self._compiled(statement)
        compiled = found.compiled if found is not None else None
        if found is not None and found.fixed is not None and not params:
            return self._run(found, found.fixed, shape)
        if found is None or compiled is None:
            # Finished at execution time (or asked for): SQLAlchemy's path.
            return self._through(statement, params, shape)
        bound = compiled.construct_params(dict(params))
        parameters: Any = tuple(bound[n] for n in found.names) \
            if found.names is not None else bound
        # The column types' hooks on the way in (e.g. an instant as SQLite's text).
        processors: Mapping[str, Any] = compiled._bind_processors
        if processors:
            if found.names is not None:
                parameters = tuple(processors[n](v) if n in processors and v is not None else v
                                   for n, v in zip(found.names, parameters, strict=True))
            else:
                parameters = {n: processors[n](v) if n in processors and v is not None else v
                              for n, v in parameters.items()}
        if found.integers:
            parameters = _typed(found.integers, parameters)
            if parameters is None:  # out of its column type's range: that path's error
                return self._through(statement, params, shape)
        if found.constant and not params:
            found.fixed = parameters
        return self._run(found, parameters, shape)

    def _through(self, statement: Statement, params: Mapping[str, Any],
                 shape: Shape | None) -> list[Any]:
        """``statement``'s rows through SQLAlchemy's ``Connection.execute``."""
        with self.engine.connect() as conn:
            rows = [tuple(r) for r in conn.execute(statement, dict(params)).all()]
        if shape is None:
            return rows
        convert = self._plain.get(shape) or self._plain_shaped(shape)
        return [convert(r) for r in rows]

    def _compiled(self, statement: Statement) -> _Compiled:
        """``statement``'s cached entry; its ``compiled`` is None if it is not run here."""
        found = self._cache.get(id(statement))
        if found is not None and found.statement is statement:
            return found
        dialect = self.engine.dialect
        # What ``statement.compile(dialect=dialect)`` does, with this reader's compiler.
        compiled = self._compiler(dialect, statement)
        direct = not (compiled.literal_execute_params or compiled.post_compile_params)
        found = _Compiled(statement, compiled if direct else None,
                          positional=self._positional,
                          integers=_integers(compiled, dialect) if self._typed else ())
        with self._lock:
            if len(self._cache) >= MAX_COMPILED:
                self._cache.clear()
            self._cache[id(statement)] = found
        return found

    def _plain_shaped(self, shape: Shape) -> Converter:
        """``shape``'s dict built from a row ``Connection.execute`` already processed."""
        with self._lock:
            convert = self._plain.get(shape)
            if convert is None:
                if len(self._plain) >= MAX_COMPILED:
                    self._plain.clear()
                convert = self._plain[shape] = _compile(
                    f"{{{shape.source(lambda i: f'row[{i}]')}}}", {})
            return convert

    def _checkout(self, engine: Engine, keep: bool) -> PoolProxiedConnection:
        """A pooled connection: the one this thread keeps, if it may and has one."""
        if keep:
            kept: _Kept | None = getattr(self._kept, "holder", None)
            # Taken while in use: an error must not leave it kept.
            fairy = kept.pop(_FAIRY, None) if kept is not None else None
            if fairy is not None:
                if getattr(fairy, "_pool", None) is engine.pool \
                        and fairy.dbapi_connection is not None:
                    return fairy
                fairy.close()  # the pool was disposed (or it was invalidated)
        return engine.raw_connection()

    def _keep(self, fairy: PoolProxiedConnection) -> None:
        """Keep ``fairy`` for this thread's next read (``kept_connection``)."""
        kept: _Kept | None = getattr(self._kept, "holder", None)
        if kept is None:
            kept = self._kept.holder = _Kept()
            with self._lock:
                self._all_kept[next(self._kept_numbers)] = kept
        kept[_FAIRY] = fairy

    def release_kept(self) -> int:
        """Give every connection a thread keeps back to the pool; how many there were.

        Meant for shutdown, when no read runs: a connection in use at that moment is
        not kept, so it is not touched here (its thread keeps it again after).
        """
        with self._lock:
            holders = list(self._all_kept.values())
        released = 0
        for kept in holders:
            fairy = kept.pop(_FAIRY, None)
            if fairy is not None:
                fairy.close()
                released += 1
        return released

    def _run(self, found: _Compiled, parameters: Any, shape: Shape | None) -> list[Any]:
        engine = self.engine
        dispatch = engine.dispatch
        error = engine.dialect.loaded_dbapi.Error
        keep = _KEEP.get() and not self._postgres
        fairy = self._checkout(engine, keep)
        cursor = None
        done = False
        try:
            try:
                if self._postgres:
                    fairy.dbapi_connection.autocommit = True  # type: ignore[union-attr]
                cursor = fairy.cursor()
                if dispatch.before_cursor_execute:
                    dispatch.before_cursor_execute(fairy, cursor, found.sql, parameters, None,
                                                   False)
                try:
                    cursor.execute(found.sql, parameters)
                    raw = cursor.fetchall()
                finally:
                    if dispatch.after_cursor_execute:
                        dispatch.after_cursor_execute(fairy, cursor, found.sql, parameters,
                                                      None, False)
                if shape is None:
                    convert = found.convert or self._converter(found, cursor.description)
                else:
                    convert = found.shaped.get(shape) or self._shaped(found, cursor.description,
                                                                      shape)
                done = True
            finally:
                # Never back to the pool in autocommit: the next user expects a transaction.
                if self._postgres and fairy.dbapi_connection is not None:
                    try:
                        fairy.dbapi_connection.autocommit = False
                    except error as exc:
                        fairy.invalidate(exc)
        except error as exc:
            self._failed(fairy, cursor, found, parameters, exc)
        finally:
            if cursor is not None:
                try:
                    cursor.close()
                except error:
                    pass  # the connection is being given back (or was invalidated) anyway
            if done and keep:
                self._keep(fairy)  # one SELECT in autocommit: nothing left open
            else:
                fairy.close()
        return [convert(r) for r in raw]

    def _failed(self, fairy: Any, cursor: Any, found: _Compiled, parameters: Any,
                exc: Any) -> NoReturn:
        """Raise ``exc`` as ``Connection.execute`` would (a timeout as ours)."""
        dialect = self.engine.dialect
        if fairy.dbapi_connection is not None and dialect.is_disconnect(
                exc, fairy.dbapi_connection, cursor):
            fairy.invalidate(exc)
        if is_timeout(exc):
            raise StatementTimeoutError(statement_timeout_of(self.engine) or 0.0) from exc
        raise DBAPIError.instance(found.sql, parameters, exc, dialect.loaded_dbapi.Error,
                                  dialect=dialect) from exc

    def _processors(self, found: _Compiled, description: Any) -> list[Any]:
        """Each column's result processor (None: as read); call with ``found.lock`` held."""
        if found.processors is None:
            dialect = self.engine.dialect
            columns = list(found.statement.selected_columns)
            if len(columns) != len(description):
                raise AssertionError(f"{len(description)} columns read, "
                                     f"{len(columns)} selected")
            found.processors = [c.type.dialect_impl(dialect).result_processor(dialect, d[1])
                                for c, d in zip(columns, description, strict=True)]
        return found.processors

    def _converter(self, found: _Compiled, description: Any) -> Converter:
        """One function applying each column type's result processor (None: as read)."""
        with found.lock:
            if found.convert is None:
                namespace: dict[str, Any] = {}
                processors = self._processors(found, description)
                parts = [_processed(i, p, namespace) for i, p in enumerate(processors)]
                found.convert = _compile(f"({', '.join(parts)},)", namespace)
            return found.convert

    def _shaped(self, found: _Compiled, description: Any, shape: Shape) -> Converter:
        """``shape``'s dict built straight from a raw row, each value processed in place."""
        with found.lock:
            convert = found.shaped.get(shape)
            if convert is None:
                processors = self._processors(found, description)
                namespace: dict[str, Any] = {}
                documents = shape.documents
                source = shape.source(lambda i: _processed(i, processors[i], namespace,
                                                           document=i in documents))
                convert = found.shaped[shape] = _compile(f"{{{source}}}", namespace)
            return convert


def _processed(i: int, processor: Any, namespace: dict[str, Any], *,
               document: bool = False) -> str:
    """The source of a raw row's i-th value through its processor (registered by name).

    A processor that carries its body as an expression (``inline``: a template and the
    names it uses, see ``engine.storage.system_tables``) is written into the converter
    itself: a list page runs the instant and JSON processors a hundred times or more,
    and the Python call around each cost more than its work (issue 13). ``document``:
    the shape writes this JSON column's value out unchanged, so a processor offering a
    ``fragment`` expression (the stored text as ``orjson.Fragment``) gives that one.
    """
    if processor is None:
        return f"row[{i}]"
    inline = getattr(processor, "fragment", None) if document else None
    if inline is None:
        inline = getattr(processor, "inline", None)
    if inline is not None:
        template: str = inline[0]
        names: dict[str, Any] = inline[1]
        for name, value in names.items():
            namespace[f"{name}{i}"] = value
        return "(" + template.format(v=f"_x{i}", raw=f"row[{i}]", i=i) + ")"
    namespace[f"_p{i}"] = processor
    return f"_p{i}(row[{i}])"


_readers: weakref.WeakKeyDictionary[Engine, DirectReader] = weakref.WeakKeyDictionary()
_readers_lock = threading.Lock()


def direct_rows(engine: Engine, statement: Statement,
                params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
    """``engine``'s rows of a cached ``statement`` (see the module docstring)."""
    return _reader(engine).rows(statement, params)


def direct_values(engine: Engine, statement: Select[Any], params: Mapping[str, Any],
                  shape: Shape) -> list[dict[str, Any]]:
    """``engine``'s rows of a cached ``statement``, each as the dict ``shape`` builds."""
    return _reader(engine).values(statement, params, shape)


def release_kept(engine: Engine) -> int:
    """Give back to ``engine``'s pool the connections its threads keep (``kept_connection``).

    Called when the app stops (``ui/app.py``): a kept connection otherwise stays checked
    out until the process exits, and the garbage collector finds it unreturned. Returns
    how many were given back.
    """
    reader = _readers.get(engine)
    return reader.release_kept() if reader is not None else 0


def _reader(engine: Engine) -> DirectReader:
    reader = _readers.get(engine)
    if reader is None:
        with _readers_lock:
            reader = _readers.get(engine)
            if reader is None:
                reader = _readers[engine] = DirectReader(engine)
    return reader
