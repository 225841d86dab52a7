"""Compatibility layer between fakesnow's HTTP server and the Rust Snowflake connector.

fakesnow (PyPI ``fakesnow[server]``) emulates Snowflake's REST endpoints on top of DuckDB. This
module wraps its Starlette app (imported, never copied) in an ASGI middleware that bridges the
gaps measured against ``snowflake-connector-rs`` and the statements Unistore Bench issues:

* SELECT results come back as Arrow (``queryResultFormat: arrow``); the Rust connector only reads
  JSON rowsets, so Arrow batches are converted to JSON rows of strings matching ``rowtype``.
* request bodies may be gzip-compressed (the official Python connector does it).
* the login handler reads ``data.SESSION_PARAMETERS`` and fails without it: an empty one is added.
* error responses lack ``data.queryId``, which the connector requires: one is added.
* typed NULL binds (FIXED, TIMESTAMP_NTZ, ...) crash the emulator: NULLs are rebound as ``ANY``.
* ``CREATE HYBRID TABLE`` / ``CREATE INTERACTIVE TABLE`` are syntax errors: they are rewritten to
  ``CREATE TABLE`` (hybrid ``INDEX`` clauses and interactive ``CLUSTER BY`` / ``TARGET_LAG`` /
  ``WAREHOUSE`` options removed) and the declared kind is remembered, so that ``SHOW TABLES``
  reports ``is_hybrid = 'Y'`` and ``is_interactive = true`` like Snowflake does, and
  ``SHOW HYBRID TABLES``, ``SHOW INTERACTIVE TABLES`` and ``SHOW INDEXES`` work.
* DuckDB constraint violations and write-write conflicts escape as HTTP 500 "Unhandled
  exception": they are reported as Snowflake errors (200001 duplicate key, 100072 NOT NULL,
  000625 lock conflict) by wrapping the cursor's execute.
* ``ALTER SESSION SET QUERY_TAG`` / ``STATEMENT_TIMEOUT_IN_SECONDS`` are not implemented: they
  are accepted and remembered per session (as are the same session parameters sent at login),
  and ``SHOW PARAMETERS LIKE '...' IN SESSION`` reports them.
* ``STATEMENT_TIMEOUT_IN_SECONDS`` is enforced: a statement running longer is interrupted and
  answered with Snowflake's error 000630, as the server does.
* ``SELECT SYSTEM$WAIT(n [, 'SECONDS' | 'MILLISECONDS'])`` waits (without using a CPU), for tests
  of timeouts and cancellation.
* ``SHOW PRIMARY KEYS`` / ``SHOW IMPORTED KEYS IN TABLE db.schema.t`` and identity columns in
  ``INFORMATION_SCHEMA.COLUMNS``: see emulator_catalog.py.

Everything else goes to fakesnow unchanged.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import decimal
import gzip
import importlib
import json
import logging
import re
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pyarrow as pa
import snowflake.connector.errors
from fakesnow.cursor import FakeSnowflakeCursor
from starlette.concurrency import run_in_threadpool

import emulator_catalog as catalog

# `fakesnow.server` is also the name of a function in fakesnow/__init__.py, so import the module
# by its full name.
fakesnow_server = importlib.import_module("fakesnow.server")
logger = logging.getLogger("unistore.snowflake_emulator")

_fakesnow_execute = FakeSnowflakeCursor._execute


def _execute_with_snowflake_errors(self: FakeSnowflakeCursor, *args: Any, **kwargs: Any) -> Any:
    """fakesnow lets DuckDB's constraint and transaction-conflict errors escape as HTTP 500
    "Unhandled exception" (which clients retry, or report without a code). Report them as
    Snowflake does: enforced keys of hybrid tables and NOT NULL violations, and lock conflicts."""
    try:
        return _fakesnow_execute(self, *args, **kwargs)
    except duckdb.ConstraintException as e:
        msg = str(e.args[0] if e.args else e).split("\n")[0]
        if "NOT NULL" in msg.upper():
            errno, sqlstate = 100072, "22000"
        else:
            errno, sqlstate = 200001, "23505"
            msg = f"Duplicate key value violates unique constraint: {msg}"
        raise snowflake.connector.errors.ProgrammingError(msg=msg, errno=errno, sqlstate=sqlstate) from e
    except duckdb.TransactionException as e:
        msg = str(e.args[0] if e.args else e).split("\n")[0]
        raise snowflake.connector.errors.ProgrammingError(
            msg=f"Statement was aborted because of a lock conflict: {msg}", errno=625, sqlstate="40001"
        ) from e


FakeSnowflakeCursor._execute = _execute_with_snowflake_errors  # type: ignore[method-assign]

LOGIN_PATH = "/session/v1/login-request"
QUERY_PATH = "/queries/v1/query-request"

_IDENT = r'(?:"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)'
_QUALIFIED = rf"{_IDENT}(?:\s*\.\s*{_IDENT}){{0,2}}"

_CREATE_SPECIAL = re.compile(
    rf"^\s*CREATE\s+(?P<replace>OR\s+REPLACE\s+)?(?P<kind>HYBRID|INTERACTIVE)\s+TABLE\s+"
    rf"(?P<ine>IF\s+NOT\s+EXISTS\s+)?(?P<name>{_QUALIFIED})(?P<rest>.*)$",
    re.IGNORECASE | re.DOTALL,
)
_CREATE_PLAIN = re.compile(
    rf"^\s*CREATE\s+(?:OR\s+REPLACE\s+)?(?:(?:LOCAL|GLOBAL)\s+)?(?:TEMP|TEMPORARY|TRANSIENT|VOLATILE)?\s*"
    rf"TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(?P<name>{_QUALIFIED})",
    re.IGNORECASE | re.DOTALL,
)
_DROP_TABLE = re.compile(
    rf"^\s*DROP\s+(?:HYBRID\s+|INTERACTIVE\s+)?TABLE\s+(?:IF\s+EXISTS\s+)?(?P<name>{_QUALIFIED})",
    re.IGNORECASE | re.DOTALL,
)
_SHOW_TABLES = re.compile(
    r"^\s*SHOW\s+(?P<terse>TERSE\s+)?(?P<kind>HYBRID\s+|INTERACTIVE\s+)?TABLES\b(?P<rest>.*)$",
    re.IGNORECASE | re.DOTALL,
)
_SHOW_INDEXES = re.compile(
    rf"^\s*SHOW\s+INDEXES\s+IN\s+(?:TABLE\s+)?(?P<name>{_QUALIFIED})\s*;?\s*$",
    re.IGNORECASE | re.DOTALL,
)
_ALTER_QUERY_TAG = re.compile(
    r"^\s*ALTER\s+SESSION\s+SET\s+QUERY_TAG\s*=\s*'(?P<tag>(?:[^']|'')*)'\s*;?\s*$",
    re.IGNORECASE | re.DOTALL,
)
_ALTER_UNSET_QUERY_TAG = re.compile(r"^\s*ALTER\s+SESSION\s+UNSET\s+QUERY_TAG\s*;?\s*$", re.IGNORECASE)
_SHOW_QUERY_TAG = re.compile(
    r"^\s*SHOW\s+PARAMETERS\s+LIKE\s+'QUERY_TAG'(?:\s+(?:IN|FOR)\s+SESSION)?\s*;?\s*$", re.IGNORECASE
)
_ALTER_STATEMENT_TIMEOUT = re.compile(
    r"^\s*ALTER\s+SESSION\s+SET\s+STATEMENT_TIMEOUT_IN_SECONDS\s*=\s*(?P<seconds>\d+)\s*;?\s*$", re.IGNORECASE
)
_SHOW_STATEMENT_TIMEOUT = re.compile(
    r"^\s*SHOW\s+PARAMETERS\s+LIKE\s+'STATEMENT_TIMEOUT_IN_SECONDS'(?:\s+(?:IN|FOR)\s+SESSION)?\s*;?\s*$",
    re.IGNORECASE,
)
_SYSTEM_WAIT = re.compile(
    r"^\s*SELECT\s+SYSTEM\$WAIT\s*\(\s*(?P<amount>\d+(?:\.\d+)?)\s*"
    r"(?:,\s*'(?P<unit>SECONDS|MILLISECONDS)'\s*)?\)\s*;?\s*$",
    re.IGNORECASE,
)
_SHOW_KEYS = re.compile(
    rf"^\s*SHOW\s+(?P<kind>PRIMARY|IMPORTED)\s+KEYS\s+IN\s+(?:TABLE\s+)?(?P<name>{_QUALIFIED})\s*;?\s*$",
    re.IGNORECASE | re.DOTALL,
)
# Snowflake's default STATEMENT_TIMEOUT_IN_SECONDS: two days.
DEFAULT_STATEMENT_TIMEOUT = 172800
_INDEX_CLAUSE = re.compile(
    rf"^\s*INDEX\s+(?P<name>{_IDENT})\s*\((?P<cols>[^)]*)\)(?:\s*INCLUDE\s*\((?P<incl>[^)]*)\))?\s*$",
    re.IGNORECASE | re.DOTALL,
)
_TABLE_OPTIONS = re.compile(
    r"\s+(?:CLUSTER\s+BY\s*\([^)]*\)|TARGET_LAG\s*=\s*'[^']*'|WAREHOUSE\s*=\s*" + _IDENT + r")",
    re.IGNORECASE,
)


def normalise(ident: str) -> str:
    """Snowflake identifier rules: unquoted identifiers are upper-cased, quoted ones kept."""
    ident = ident.strip()
    if ident.startswith('"') and ident.endswith('"'):
        return ident[1:-1].replace('""', '"')
    return ident.upper()


def split_qualified(name: str) -> list[str]:
    parts = re.findall(_IDENT, name)
    return [normalise(p) for p in parts]


def split_top_level(text: str) -> list[str]:
    """Splits on commas outside parentheses and quotes."""
    parts, depth, current, quote = [], 0, [], None
    for ch in text:
        if quote:
            current.append(ch)
            if ch == quote:
                quote = None
            continue
        if ch in "'\"":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        current.append(ch)
    parts.append("".join(current))
    return parts


def matching_paren(text: str, start: int) -> int:
    """Index of the parenthesis closing the one at ``start``, or -1."""
    depth, quote = 0, None
    for i in range(start, len(text)):
        ch = text[i]
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return i
    return -1


@dataclass
class DeclaredTable:
    kind: str  # HYBRID or INTERACTIVE
    indexes: list[tuple[str, list[str], list[str]]] = field(default_factory=list)
    primary_key: list[str] = field(default_factory=list)


@dataclass
class SessionState:
    database: str | None
    schema: str | None
    query_tag: str = ""
    # 0: no limit
    statement_timeout: int = 0


class CompatLayer:
    """ASGI middleware around fakesnow's Starlette app."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.lock = threading.Lock()
        self.sessions: dict[str, SessionState] = {}
        # (database, schema, table) -> declared kind
        self.tables: dict[tuple[str, str, str], DeclaredTable] = {}

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] not in (LOGIN_PATH, QUERY_PATH):
            await self.app(scope, receive, send)
            return
        body = await read_body(receive)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if headers.get("content-encoding", "").lower() == "gzip":
            body = gzip.decompress(body)
        try:
            if scope["path"] == LOGIN_PATH:
                await self.login(scope, receive, send, body)
            else:
                await self.query(scope, receive, send, body, headers)
        except Exception as e:  # a bug here must still answer, or the client waits forever
            logger.exception("compatibility layer failed")
            await send_json(send, 500, fix_error({"code": "261000", "message": f"emulator error: {e}", "success": False}))

    # ---------------------------------------------------------------- login

    async def login(self, scope: dict, receive: Any, send: Any, body: bytes) -> None:
        request = json.loads(body or b"{}")
        data = request.setdefault("data", {})
        params = data.get("SESSION_PARAMETERS") or {}
        data["SESSION_PARAMETERS"] = params
        status, response = await self.call_inner(scope, receive, json.dumps(request).encode())
        token = ((response or {}).get("data") or {}).get("token")
        if token:
            info = (response.get("data") or {}).get("sessionInfo") or {}
            upper = {k.upper(): v for k, v in params.items()}
            tag = str(upper.get("QUERY_TAG", ""))
            try:
                timeout = int(upper.get("STATEMENT_TIMEOUT_IN_SECONDS", 0))
            except (TypeError, ValueError):
                timeout = 0
            with self.lock:
                self.sessions[token] = SessionState(info.get("databaseName"), info.get("schemaName"), tag, timeout)
        await send_json(send, status, fix_error(response))

    # ---------------------------------------------------------------- queries

    async def query(self, scope: dict, receive: Any, send: Any, body: bytes, headers: dict) -> None:
        request = json.loads(body or b"{}")
        token = headers.get("authorization", "")[17:-1]
        sql = request.get("sqlText", "")
        if token not in fakesnow_server.sessions:
            # let fakesnow produce its own "login again" error
            status, response = await self.call_inner(scope, receive, json.dumps(request).encode())
            await send_json(send, status, fix_error(response))
            return
        with self.lock:
            session = self.sessions.setdefault(token, SessionState(None, None))

        if m := _ALTER_QUERY_TAG.match(sql):
            session.query_tag = m.group("tag").replace("''", "'")
            await send_json(send, 200, status_result(session, "Statement executed successfully."))
            return
        if _ALTER_UNSET_QUERY_TAG.match(sql):
            session.query_tag = ""
            await send_json(send, 200, status_result(session, "Statement executed successfully."))
            return
        if _SHOW_QUERY_TAG.match(sql):
            await send_json(send, 200, query_tag_result(session))
            return
        if m := _ALTER_STATEMENT_TIMEOUT.match(sql):
            session.statement_timeout = int(m.group("seconds"))
            await send_json(send, 200, status_result(session, "Statement executed successfully."))
            return
        if _SHOW_STATEMENT_TIMEOUT.match(sql):
            await send_json(send, 200, statement_timeout_result(session))
            return
        if m := _SHOW_INDEXES.match(sql):
            await send_json(send, 200, self.show_indexes(session, m.group("name")))
            return
        if m := _SHOW_KEYS.match(sql):
            await send_json(send, 200, await self.show_keys(session, token, m.group("kind"), m.group("name")))
            return
        if m := _SYSTEM_WAIT.match(sql):
            await send_json(send, 200, await self.system_wait(session, token, m))
            return

        declared: tuple[str, str, DeclaredTable] | None = None
        forget: str | None = None
        show_kind: str | None = None
        is_show_tables = False
        if m := _CREATE_SPECIAL.match(sql):
            kind = m.group("kind").upper()
            rest, table = rewrite_special_create(kind, m.group("rest"))
            sql = "CREATE {}TABLE {}{}{}".format(
                m.group("replace") or "", m.group("ine") or "", m.group("name"), rest
            )
            declared = (m.group("name"), kind, table)
        elif m := _CREATE_PLAIN.match(sql):
            forget = m.group("name")
        elif m := _DROP_TABLE.match(sql):
            forget = m.group("name")
            sql = re.sub(r"^\s*DROP\s+(?:HYBRID\s+|INTERACTIVE\s+)?TABLE", "DROP TABLE", sql, flags=re.I)
        elif m := _SHOW_TABLES.match(sql):
            is_show_tables = True
            if m.group("kind"):
                show_kind = m.group("kind").strip().upper()
                sql = "SHOW {}TABLES{}".format(m.group("terse") or "", m.group("rest"))
        request["sqlText"] = sql

        bindings = request.get("bindings") or {}
        for binding in bindings.values():
            if isinstance(binding, dict) and binding.get("value") is None:
                binding["type"] = "ANY"

        status, response = await self.with_statement_timeout(
            session, token, self.call_inner(scope, receive, json.dumps(request).encode())
        )
        data = (response or {}).get("data") or {}
        if response and response.get("success"):
            if "finalDatabaseName" in data:
                session.database = data.get("finalDatabaseName")
                session.schema = data.get("finalSchemaName")
            if data.get("queryResultFormat") == "arrow":
                to_json_rowset(data)
            catalog.report_identity_columns(data)
            if declared is not None:
                name, kind, table = declared
                with self.lock:
                    self.tables[self.resolve(session, name)] = table
            elif forget is not None:
                with self.lock:
                    self.tables.pop(self.resolve(session, forget), None)
            if is_show_tables:
                self.patch_show_tables(data, show_kind)
        await send_json(send, status, fix_error(response))

    def resolve(self, session: SessionState, name: str) -> tuple[str, str, str]:
        parts = split_qualified(name)
        while len(parts) < 3:
            parts.insert(0, (session.schema if len(parts) == 1 else session.database) or "")
        return (parts[0].upper(), parts[1].upper(), parts[2].upper())

    def patch_show_tables(self, data: dict, show_kind: str | None) -> None:
        rowtype = data.get("rowtype") or []
        names = [c.get("name", "").lower() for c in rowtype]
        try:
            i_name, i_db, i_schema = names.index("name"), names.index("database_name"), names.index("schema_name")
        except ValueError:
            return
        i_hybrid = names.index("is_hybrid") if "is_hybrid" in names else None
        terse = i_hybrid is None
        if not terse and "is_interactive" not in names:
            rowtype.append(column("is_interactive", "boolean"))
        rows = []
        for row in data.get("rowset") or []:
            key = (str(row[i_db]).upper(), str(row[i_schema]).upper(), str(row[i_name]).upper())
            declared = self.tables.get(key)
            kind = declared.kind if declared else None
            if show_kind is not None and kind != show_kind:
                continue
            if not terse:
                row[i_hybrid] = "Y" if kind == "HYBRID" else "N"
                row.append("true" if kind == "INTERACTIVE" else "false")
            rows.append(row)
        data["rowset"] = rows
        data["total"] = data["returned"] = len(rows)

    async def with_statement_timeout(
        self, session: SessionState, token: str, call: Any, in_duckdb: bool = True
    ) -> tuple[int, dict | None]:
        """Runs an inner call under the session's STATEMENT_TIMEOUT_IN_SECONDS, interrupting
        DuckDB and answering Snowflake's timeout error when it runs out."""
        if session.statement_timeout <= 0:
            return await call
        try:
            return await asyncio.wait_for(call, session.statement_timeout)
        except asyncio.TimeoutError:
            conn = fakesnow_server.sessions.get(token)
            if in_duckdb and conn is not None:
                conn._duck_conn.interrupt()  # noqa: SLF001
            return 200, statement_timeout_error(session.statement_timeout)

    async def system_wait(self, session: SessionState, token: str, m: re.Match) -> dict:
        amount = float(m.group("amount"))
        seconds = amount / 1000 if (m.group("unit") or "").upper() == "MILLISECONDS" else amount

        async def wait() -> tuple[int, dict]:
            await asyncio.sleep(seconds)
            return 200, result(session, [column("SYSTEM$WAIT", "text")], [[f"waited {m.group('amount')} {(m.group('unit') or 'seconds').lower()}"]])

        _, response = await self.with_statement_timeout(session, token, wait(), in_duckdb=False)
        return fix_error(response)

    async def show_keys(self, session: SessionState, token: str, kind: str, name: str) -> dict:
        key = self.resolve(session, name)
        conn = fakesnow_server.sessions[token]
        duck = conn._duck_conn.cursor()  # noqa: SLF001
        try:
            if kind.upper() == "PRIMARY":
                rows = await run_in_threadpool(catalog.primary_key_rows, duck, key)
                names = catalog.PRIMARY_KEY_COLUMNS
            else:
                rows = await run_in_threadpool(catalog.imported_key_rows, duck, key)
                names = catalog.IMPORTED_KEY_COLUMNS
        finally:
            duck.close()
        rowtype = [column(c, "timestamp_ltz" if c == "created_on" else "text") for c in names]
        return result(session, rowtype, rows)

    def show_indexes(self, session: SessionState, name: str) -> dict:
        key = self.resolve(session, name)
        table = self.tables.get(key)
        cols = ["created_on", "name", "is_unique", "columns", "included_columns", "table",
                "database_name", "schema_name", "owner", "owner_role_type"]
        rows = []
        if table is not None and table.kind == "HYBRID":
            db, schema, tname = key
            created = "0.000000000"
            if table.primary_key:
                rows.append([created, f"SYS_INDEX_{tname}_PRIMARY", "Y", json.dumps(table.primary_key), "[]",
                             tname, db, schema, "SYSADMIN", "ROLE"])
            for iname, icols, incl in table.indexes:
                rows.append([created, iname, "N", json.dumps(icols), json.dumps(incl), tname, db, schema,
                             "SYSADMIN", "ROLE"])
        rowtype = [column(c, "timestamp_ltz" if c == "created_on" else "text") for c in cols]
        return result(session, rowtype, rows)

    async def call_inner(self, scope: dict, receive: Any, body: bytes) -> tuple[int, dict | None]:
        headers = [
            (k, v) for k, v in scope["headers"] if k.lower() not in (b"content-encoding", b"content-length")
        ]
        headers.append((b"content-length", str(len(body)).encode()))
        inner_scope = dict(scope, headers=headers)
        delivered = False

        async def inner_receive() -> dict:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        status = 500
        chunks: list[bytes] = []

        async def inner_send(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        try:
            await self.app(inner_scope, inner_receive, inner_send)
        except Exception as e:  # fakesnow bug or unsupported feature: report it as Snowflake would
            return 500, {"data": None, "code": "261000", "message": f"emulator error: {e}", "success": False}
        raw = b"".join(chunks)
        try:
            return status, json.loads(raw)
        except ValueError:
            text = raw.decode("utf-8", "replace")[:2000]
            return status, {"data": None, "code": "261000", "message": f"emulator error: {text}", "success": False}


def rewrite_special_create(kind: str, rest: str) -> tuple[str, DeclaredTable]:
    """Removes what DuckDB cannot parse from a hybrid/interactive table definition."""
    table = DeclaredTable(kind)
    open_at = rest.find("(")
    body_end = -1
    if open_at >= 0 and not re.match(r"^\s*(?:CLUSTER|AS|TARGET_LAG|WAREHOUSE)\b", rest, re.I) and rest[:open_at].strip() == "":
        body_end = matching_paren(rest, open_at)
    if body_end > 0:
        elements = []
        for element in split_top_level(rest[open_at + 1 : body_end]):
            if m := _INDEX_CLAUSE.match(element):
                cols = [normalise(c) for c in m.group("cols").split(",") if c.strip()]
                incl = [normalise(c) for c in (m.group("incl") or "").split(",") if c.strip()]
                table.indexes.append((normalise(m.group("name")), cols, incl))
                continue
            if pk := re.search(r"PRIMARY\s+KEY\s*\(([^)]*)\)", element, re.I):
                table.primary_key = [normalise(c) for c in pk.group(1).split(",") if c.strip()]
            elif re.search(r"\bPRIMARY\s+KEY\b", element, re.I):
                table.primary_key = [normalise(element.strip().split()[0])]
            elements.append(element)
        rest = " (" + ",".join(elements) + ")" + rest[body_end + 1 :]
    rest = _TABLE_OPTIONS.sub("", rest)
    return rest, table


def column(name: str, sf_type: str) -> dict:
    info: dict[str, Any] = {
        "name": name, "database": "", "schema": "", "table": "", "nullable": True, "type": sf_type,
        "byteLength": None, "length": None, "scale": None, "precision": None, "collation": None,
    }
    if sf_type == "text":
        info["byteLength"] = info["length"] = 16777216
    elif sf_type.startswith("timestamp"):
        info["precision"], info["scale"] = 0, 9
    return info


def result(session: SessionState, rowtype: list[dict], rows: list[list[Any]]) -> dict:
    return {
        "data": {
            "parameters": [],
            "rowtype": rowtype,
            "rowset": rows,
            "total": len(rows),
            "returned": len(rows),
            "queryId": str(uuid.uuid4()),
            "queryResultFormat": "json",
            "finalDatabaseName": session.database,
            "finalSchemaName": session.schema,
        },
        "success": True,
    }


def status_result(session: SessionState, message: str) -> dict:
    return result(session, [column("status", "text")], [[message]])


def query_tag_result(session: SessionState) -> dict:
    cols = ["key", "value", "default", "level", "description", "type"]
    level = "SESSION" if session.query_tag else ""
    row = ["QUERY_TAG", session.query_tag, "", level, "String (up to 4096 characters) used to tag statements", "STRING"]
    return result(session, [column(c, "text") for c in cols], [row])


def statement_timeout_result(session: SessionState) -> dict:
    cols = ["key", "value", "default", "level", "description", "type"]
    value = session.statement_timeout or DEFAULT_STATEMENT_TIMEOUT
    level = "SESSION" if session.statement_timeout else ""
    row = ["STATEMENT_TIMEOUT_IN_SECONDS", str(value), str(DEFAULT_STATEMENT_TIMEOUT), level,
           "Timeout in seconds for statements: statements are automatically canceled if they run for longer", "NUMBER"]
    return result(session, [column(c, "text") for c in cols], [row])


def statement_timeout_error(seconds: int) -> dict:
    return fix_error({
        "data": {"errorCode": "000630", "sqlState": "57014"},
        "code": "000630",
        "message": f"Statement reached its statement or warehouse timeout of {seconds} second(s) and was canceled.",
        "success": False,
    })


def fix_error(response: dict | None) -> dict:
    """Error responses need ``data.queryId`` for the connector to parse them."""
    if response is None:
        response = {"data": None, "code": "261000", "message": "emulator returned no body", "success": False}
    if not response.get("success"):
        data = response.get("data")
        if not isinstance(data, dict):
            data = {}
            response["data"] = data
        data.setdefault("queryId", str(uuid.uuid4()))
        if response.get("code") and "errorCode" not in data:
            data["errorCode"] = response["code"]
    return response


def to_json_rowset(data: dict) -> None:
    """Converts an Arrow IPC rowset into Snowflake's JSON rowset (every value a string)."""
    rowtype = data.get("rowtype") or []
    encoded = data.pop("rowsetBase64", "") or ""
    rows: list[list[Any]] = []
    if encoded:
        table = pa.ipc.open_stream(base64.b64decode(encoded)).read_all()
        columns = [table.column(i).to_pylist() for i in range(table.num_columns)]
        for values in zip(*columns):
            rows.append([cell(v, rowtype[i] if i < len(rowtype) else {}) for i, v in enumerate(values)])
    data["queryResultFormat"] = "json"
    data["rowset"] = rows
    data["total"] = data["returned"] = len(rows)


def epoch_text(epoch: int, fraction: int) -> str:
    total = epoch * 1_000_000_000 + fraction
    sign = "-" if total < 0 else ""
    total = abs(total)
    return f"{sign}{total // 1_000_000_000}.{total % 1_000_000_000:09d}"


def cell(value: Any, info: dict) -> str | None:
    if value is None:
        return None
    sf_type = str(info.get("type", "text")).lower()
    if sf_type == "boolean":
        return "1" if value else "0"
    if sf_type == "fixed":
        if isinstance(value, decimal.Decimal):
            return format(value, "f")
        return str(int(value))
    if sf_type == "real":
        return repr(float(value))
    if sf_type == "date":
        if isinstance(value, datetime.date):
            return str((value - datetime.date(1970, 1, 1)).days)
        return str(value)
    if sf_type == "time":
        ns = int(value)
        return f"{ns // 1_000_000_000}.{ns % 1_000_000_000:09d}"
    if sf_type.startswith("timestamp"):
        if isinstance(value, dict):
            if value.get("epoch") is None:
                return None
            text = epoch_text(int(value["epoch"]), int(value["fraction"]))
            if sf_type == "timestamp_tz":
                text += f" {int(value.get('timezone', 1440))}"
            return text
        if isinstance(value, datetime.datetime):
            if value.tzinfo is None:
                value = value.replace(tzinfo=datetime.timezone.utc)
            delta = value - datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
            micros = (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds
            text = epoch_text(micros // 1_000_000, (micros % 1_000_000) * 1000)
            return text + (" 1440" if sf_type == "timestamp_tz" else "")
        return str(value)
    if sf_type == "binary":
        return bytes(value).hex().upper()
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


async def read_body(receive: Any) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    return b"".join(chunks)


async def send_json(send: Any, status: int, payload: dict) -> None:
    body = json.dumps(payload).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


def build_app() -> CompatLayer:
    return CompatLayer(fakesnow_server.app)
