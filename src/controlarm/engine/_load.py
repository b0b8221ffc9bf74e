"""Engine room: copy a folder of tables (Parquet/CSV) into a PostgreSQL schema.

For a hospital's team that wants to try controlarm on its warehouse engine with known data (the
demo, or a synthetic warehouse), and for the tests. Tables go in through ADBC's bulk ingest
(PostgreSQL ``COPY`` in binary form), as they are: types from the Parquet schema, CSV as text.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..errors import InputError
from ._connection import _short

__all__ = ["copy_folder_to_postgres"]


def copy_folder_to_postgres(folder: str | Path, url: str, *, replace: bool = False,
                            progress: Callable[[str, int, int], None] | None = None) -> dict[str, int]:
    """Copy every ``*.parquet`` / ``*.csv`` of ``folder`` into the schema named by ``url``.

    Parameters
    ----------
    folder : path
    url : str
        ``postgresql://user@host/database?schema=name`` (schema default ``public``).
    replace : bool
        Drop and recreate the schema first (default: refuse when a table exists).
    progress : callable, optional
        Called as ``progress(table, rows_copied, rows_total)`` as batches go in.

    Returns
    -------
    dict
        Table name -> rows copied.

    Notes
    -----
    Parquet files are streamed in batches of 64k rows, so memory stays flat whatever the table's
    size: a synthetic warehouse of 5M hospitalizations has 4 GB of Parquet, several times that in
    memory. A CSV file is read whole (see :func:`_batches`).
    """
    from urllib.parse import parse_qsl, urlencode

    import pyarrow as pa

    from ._connection import PostgresConnection

    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder} is not a folder. Fix: give the folder that holds the table files.")
    bare, _, query = url.partition("?")
    params = dict(parse_qsl(query, keep_blank_values=True))
    schema = params.pop("schema", "public")
    con = PostgresConnection(bare + ("?" + urlencode(params) if params else ""))
    counts: dict[str, int] = {}
    report = progress or (lambda table, done, total: None)
    try:
        q = '"' + schema.replace('"', '""') + '"'
        if replace and schema != "public":
            con.run_native(f"DROP SCHEMA IF EXISTS {q} CASCADE")
        con.run_native(f"CREATE SCHEMA IF NOT EXISTS {q}")
        files = sorted([*folder.glob("*.parquet"), *folder.glob("*.csv")])
        for f in files:
            name = f.stem.lower()
            reader, total = _batches(f)
            done = [0]

            failed: list[BaseException] = []

            def counted(batches, name=name, total=total, done=done, failed=failed):
                report(name, 0, total)
                try:
                    for batch in batches:
                        done[0] += batch.num_rows
                        yield batch
                        report(name, done[0], total)
                except (pa.ArrowException, OSError) as exc:
                    # the driver wraps this in its own error; keep it to name the file below
                    failed.append(exc)
                    raise

            if replace:
                con.run_native(f'DROP TABLE IF EXISTS {q}."{name}"')
            try:
                con.ingest(name, pa.RecordBatchReader.from_batches(reader.schema, counted(reader)), schema)
            except Exception:
                if not failed:
                    raise
                # a file damaged past its footer: the reading error, not the driver's
                why = _short(failed[0]).rstrip(".")
                raise InputError(f"{f}: the copy into {schema}.{name} stopped after {done[0]:,} of {total:,} rows: "
                                 f"{why}. Fix: check the file (open it with pandas or DuckDB), or export the table "
                                 "again.") from None
            counts[name] = done[0]
    finally:
        con.close()
    return counts


def _batches(path: Path):
    """A batch reader of one table file, and its row count.

    A CSV file is read whole: a streaming CSV reader fixes each column's type from the first block,
    so a later value of another type would fail half-way through the copy. Warehouse-sized tables
    come as Parquet.
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    try:
        if path.suffix == ".parquet":
            pf = pq.ParquetFile(path)
            return pa.RecordBatchReader.from_batches(pf.schema_arrow, pf.iter_batches(batch_size=64 * 1024)), \
                pf.metadata.num_rows
        table = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(
            column_types={}, strings_can_be_null=True, auto_dict_encode=False))
    except (pa.ArrowException, OSError) as exc:
        kind = "Parquet" if path.suffix == ".parquet" else "CSV"
        raise InputError(f"{path}: this is not a readable {kind} file ({_short(exc).rstrip('.')}). Fix: check "
                         "the file (open it with pandas or DuckDB), or export the table again.") from None
    return pa.RecordBatchReader.from_batches(table.schema, table.to_batches()), table.num_rows

