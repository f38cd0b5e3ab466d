"""Reading the text files a researcher writes: UTF-8 (a leading BOM dropped) and CSV.

Spreadsheet programs save CSV with a UTF-8 byte-order mark; read naively it
becomes an invisible first character of the first column name. Every text
and CSV reader of :mod:`compfair.data` goes through :func:`read_text_file`,
which drops it.
"""

from __future__ import annotations

import codecs
import csv
import io
from pathlib import Path

from compfair.io import InputError

#: One CSV record: the line it starts on (1-based) and its fields.
CsvRecord = tuple[int, list[str]]


def read_text_file(path: Path) -> str:
    """The text of a UTF-8 file, without a leading byte-order mark.

    Line endings are left as they are (CSV parsing needs them).

    Raises:
        InputError: naming the file, when it is missing, a folder, unreadable,
            or not UTF-8 (with the line and the offending byte).
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        raise InputError(f"{path}: file not found") from exc
    except IsADirectoryError as exc:
        raise InputError(f"{path}: is a folder, not a file") from exc
    except OSError as exc:
        raise InputError(f"{path}: cannot read file ({exc.strerror or exc})") from exc
    if raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8) :]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise InputError(
            f"{path}, line {line}: not valid UTF-8 (byte 0x{raw[exc.start]:02x}); "
            "save the file as UTF-8"
        ) from exc


def read_csv_file(path: Path) -> tuple[list[str], list[CsvRecord]]:
    """The header (names stripped of spaces) and the non-blank records of a UTF-8 CSV file.

    A record is ``(line it starts on, fields)``; a record whose fields are all
    blank is left out. The header is ``[]`` for an empty file.

    Raises:
        InputError: as :func:`read_text_file`, or for malformed CSV (file and line named).
    """
    path = Path(path)
    reader = csv.reader(io.StringIO(read_text_file(path), newline=""))
    records: list[CsvRecord] = []
    try:
        header = [h.strip() for h in next(reader, [])]
        start = reader.line_num + 1
        for fields in reader:
            if fields and any(f.strip() for f in fields):
                records.append((start, fields))
            start = reader.line_num + 1
    except csv.Error as exc:
        raise InputError(f"{path}, line {reader.line_num}: malformed CSV ({exc})") from exc
    return header, records
