"""Catalog answers the emulator gets wrong, answered as Snowflake does (used by compat.py).

* ``SHOW PRIMARY KEYS IN TABLE db.schema.t``: fakesnow filters on the session's *current*
  database, so a table in another database has no key, and every column gets ``key_sequence``
  1. Answered from DuckDB's constraints for the named table, with the key's real column order.
* ``SHOW IMPORTED KEYS IN TABLE db.schema.t``: fakesnow lists primary keys as foreign keys.
  Answered from DuckDB's foreign-key constraints.
* ``INFORMATION_SCHEMA.COLUMNS``: an ``AUTOINCREMENT`` / ``IDENTITY`` column shows up as a
  ``nextval('_fs_seq_...')`` default with ``IS_IDENTITY`` NULL; Snowflake reports
  ``IS_IDENTITY = 'YES'`` and no default. Rewritten to Snowflake's shape.
"""

from __future__ import annotations

import re
from typing import Any

_FS_SEQUENCE_DEFAULT = re.compile(r"^\s*nextval\('_fs_seq_", re.IGNORECASE)

PRIMARY_KEY_COLUMNS = [
    "created_on", "database_name", "schema_name", "table_name", "column_name", "key_sequence",
    "constraint_name", "rely", "comment",
]
IMPORTED_KEY_COLUMNS = [
    "created_on", "pk_database_name", "pk_schema_name", "pk_table_name", "pk_column_name",
    "fk_database_name", "fk_schema_name", "fk_table_name", "fk_column_name", "key_sequence",
    "update_rule", "delete_rule", "fk_name", "pk_name", "deferrability", "rely", "comment",
]


def _constraints(duck: Any, kind: str, key: tuple[str, str, str]) -> list[tuple]:
    database, schema, table = key
    return duck.execute(
        """SELECT database_name, schema_name, table_name, constraint_column_names,
                  referenced_table, referenced_column_names, constraint_index
           FROM duckdb_constraints()
           WHERE constraint_type = ? AND upper(database_name) = ? AND upper(schema_name) = ?
             AND upper(table_name) = ?
           ORDER BY constraint_index""",
        [kind, database, schema, table],
    ).fetchall()


def primary_key_rows(duck: Any, key: tuple[str, str, str]) -> list[list[Any]]:
    """Rows of ``SHOW PRIMARY KEYS`` for one table (all cells as text, as the JSON rowset)."""
    rows = []
    for database, schema, table, columns, _, _, _ in _constraints(duck, "PRIMARY KEY", key):
        name = f"{database}_{schema}_{table}_pkey".lower()
        for sequence, column in enumerate(columns, start=1):
            rows.append(["0.000000000", database, schema, table, column, str(sequence), name, "false", None])
    return rows


def imported_key_rows(duck: Any, key: tuple[str, str, str]) -> list[list[Any]]:
    """Rows of ``SHOW IMPORTED KEYS`` for one table. DuckDB keeps foreign keys within a schema."""
    rows = []
    for database, schema, table, columns, referenced, referenced_columns, index in _constraints(
        duck, "FOREIGN KEY", key
    ):
        fk_name = f"fk_{table}_{index}".lower()
        pk_name = f"{database}_{schema}_{referenced}_pkey".lower()
        for sequence, (column, target) in enumerate(zip(columns, referenced_columns), start=1):
            rows.append([
                "0.000000000", database, schema, referenced, target, database, schema, table, column,
                str(sequence), "NO ACTION", "NO ACTION", fk_name, pk_name, "NOT DEFERRABLE", "false", None,
            ])
    return rows


def report_identity_columns(data: dict) -> None:
    """In a result with ``COLUMN_DEFAULT`` and ``IS_IDENTITY`` columns, report fakesnow's
    sequence defaults as Snowflake reports identity columns."""
    rowtype = data.get("rowtype") or []
    names = [str(c.get("name", "")).upper() for c in rowtype]
    if "COLUMN_DEFAULT" not in names or "IS_IDENTITY" not in names:
        return
    i_default, i_identity = names.index("COLUMN_DEFAULT"), names.index("IS_IDENTITY")
    rowtype[i_identity]["name"] = "IS_IDENTITY"
    rowtype[i_identity]["type"] = "text"
    for row in data.get("rowset") or []:
        default = row[i_default]
        identity = isinstance(default, str) and bool(_FS_SEQUENCE_DEFAULT.match(default))
        row[i_identity] = "YES" if identity else "NO"
        if identity:
            row[i_default] = None
