"""Reading an uploaded spreadsheet into text cells: CSV (the standard library, delimiter sniffed,
UTF-8 with or without a BOM) or XLSX (openpyxl, the first sheet, values as shown)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile
from dataclasses import dataclass
from typing import Any

import openpyxl
from openpyxl.utils.exceptions import InvalidFileException

MAX_ROWS = 500
MAX_BYTES = 5 * 1024 * 1024
MAX_COLUMNS = 50
XLSX_MAGIC = b"PK\x03\x04"


class FileRefused(ValueError):
    """The file cannot be imported; the message says why and what to do."""


@dataclass(frozen=True)
class Sheet:
    headers: list[str]
    rows: list[list[str]]


def sheet_read(*, name: str, data: bytes) -> Sheet:
    """The file's header line and its rows (blank rows dropped), or FileRefused."""
    lowered = name.lower()
    if len(data) > MAX_BYTES:
        raise FileRefused(
            f"The file is {len(data) / 1024 / 1024:.1f} MB; at most {MAX_BYTES // 1024 // 1024} MB "
            "can be imported at once. Split it into smaller files."
        )
    if not data:
        raise FileRefused(
            "The file is empty. Choose a CSV or XLSX file with a header line and one post a line."
        )
    if lowered.endswith(".xlsx"):
        lines = _xlsx_lines(data)
    elif lowered.endswith((".csv", ".txt")):
        if data.startswith(XLSX_MAGIC):
            raise FileRefused(
                "This file is a spreadsheet, not CSV text. Save it as .xlsx or export it as CSV."
            )
        lines = _csv_lines(data)
    else:
        raise FileRefused(
            "Choose a CSV (.csv) or Excel (.xlsx) file. Other kinds of file cannot be imported."
        )
    lines = [line for line in lines if any(cell.strip() for cell in line)]
    if not lines:
        raise FileRefused(
            "The file has no lines. Its first line names the columns, each line after it a post."
        )
    headers, rows = lines[0], lines[1:]
    if len(headers) > MAX_COLUMNS:
        raise FileRefused(f"The file has {len(headers)} columns; a post has at most {MAX_COLUMNS}.")
    if not rows:
        raise FileRefused("The file has a header line but no posts under it.")
    if len(rows) > MAX_ROWS:
        raise FileRefused(
            f"The file has {len(rows):,} posts; at most {MAX_ROWS} can be imported at once. "
            "Split it into smaller files."
        )
    width = max(len(headers), *(len(row) for row in rows))
    headers = [(h.strip() or f"Column {i + 1}") for i, h in enumerate(_padded(headers, width))]
    return Sheet(headers=headers, rows=[_padded(row, width) for row in rows])


def _padded(row: list[str], width: int) -> list[str]:
    return (row + [""] * width)[:width]


def _csv_lines(data: bytes) -> list[list[str]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise FileRefused(
            "The file is not UTF-8 text. Save it as “CSV UTF-8” (Excel) or with UTF-8 encoding, "
            "then upload it again."
        ) from None
    sample = text[:8192]
    try:
        dialect: Any = csv.Sniffer().sniff(sample, delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    try:
        return [list(row) for row in csv.reader(io.StringIO(text, newline=""), dialect)]
    except csv.Error as exc:
        raise FileRefused(
            f"The file is not valid CSV ({exc}). Check its quotes and upload it again."
        ) from None


def _xlsx_lines(data: bytes) -> list[list[str]]:
    if not data.startswith(XLSX_MAGIC):
        raise FileRefused("This is not an Excel .xlsx file. Save it as .xlsx (Excel Workbook) or as CSV.")
    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, OSError, ValueError):
        raise FileRefused(
            "This .xlsx file could not be read. Open it in Excel, save it again, or export it as CSV."
        ) from None
    try:
        sheet = book.worksheets[0]
        lines: list[list[str]] = []
        for values in sheet.iter_rows(values_only=True):
            lines.append([_cell_text(value) for value in values])
            if len(lines) > MAX_ROWS + 1 and any(lines[-1]):
                raise FileRefused(
                    f"The file has more than {MAX_ROWS} posts; at most {MAX_ROWS} can be imported at once. "
                    "Split it into smaller files."
                )
        return lines
    finally:
        book.close()


def _cell_text(value: Any) -> str:
    """A cell as a person typed it: dates as YYYY-MM-DD, times as HH:MM."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0, 0):
            return value.date().isoformat()
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dt.time):
        return value.strftime("%H:%M")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
