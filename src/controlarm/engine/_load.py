"""Engine room: copy a folder of tables (Parquet/CSV) into a PostgreSQL schema.

For a hospital's team that wants to try controlarm on its warehouse engine with known data (the
demo, or a synthetic warehouse), and for the tests. Tables go in through ADBC's bulk ingest
(PostgreSQL ``COPY`` in binary form), as they are: types from the Parquet schema, CSV as text.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import InputError

__all__ = ["copy_folder_to_postgres"]


def copy_folder_to_postgres(folder: str | Path, url: str, *, replace: bool = False) -> dict[str, int]:
    """Copy every ``*.parquet`` / ``*.csv`` of ``folder`` into the schema named by ``url``.

    Parameters
    ----------
    folder : path
    url : str
        ``postgresql://user@host/database?schema=name`` (schema default ``public``).
    replace : bool
        Drop and recreate the schema first (default: refuse when a table exists).

    Returns
    -------
    dict
        Table name -> rows copied.
    """
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq
    from urllib.parse import parse_qsl, urlencode

    from ._connection import PostgresConnection

    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder} is not a folder. Fix: give the folder that holds the table files.")
    bare, _, query = url.partition("?")
    params = dict(parse_qsl(query, keep_blank_values=True))
    schema = params.pop("schema", "public")
    con = PostgresConnection(bare + ("?" + urlencode(params) if params else ""))
    counts: dict[str, int] = {}
    try:
        q = '"' + schema.replace('"', '""') + '"'
        if replace and schema != "public":
            con.run_native(f"DROP SCHEMA IF EXISTS {q} CASCADE")
        con.run_native(f"CREATE SCHEMA IF NOT EXISTS {q}")
        files = sorted([*folder.glob("*.parquet"), *folder.glob("*.csv")])
        for f in files:
            table = (pq.read_table(f) if f.suffix == ".parquet"
                     else pacsv.read_csv(f, convert_options=pacsv.ConvertOptions(
                         column_types={}, strings_can_be_null=True, auto_dict_encode=False)))
            name = f.stem.lower()
            if replace:
                con.run_native(f'DROP TABLE IF EXISTS {q}."{name}"')
            con.ingest(name, table, schema)
            counts[name] = table.num_rows
    finally:
        con.close()
    return counts
