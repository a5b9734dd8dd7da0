"""Reading an uploaded register file (CSV or .xlsx) one row at a time.

Only decoding lives here; what the columns must hold is checked by
``server.ballot.register_table``.  Neither reader holds the file's rows: the CSV reader
decodes the (spooled) upload as it goes, the xlsx one is openpyxl's read-only mode, which
streams the sheet.  Both stop at the row limit.
"""
from __future__ import annotations

import codecs
import csv
import io
import re
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO

# Parts of an xlsx that openpyxl reads whole (shared strings, styles, the workbook): each at most this
# many bytes once unpacked.  Worksheets are streamed, so only their rows are limited.
MAX_XLSX_PART = 64 * 1024 * 1024
# Header cells read from an xlsx (a register has 12 columns; a sheet may be formatted far wider).
MAX_XLSX_COLUMNS = 64


class RegisterFileError(ValueError):
    """The file itself cannot be read (not the rows in it)."""

    def __init__(self, code: str, message: str, status: int = 422):
        self.code = code
        self.message = message
        self.status = status
        super().__init__(message)


def too_many_rows(max_rows: int) -> RegisterFileError:
    return RegisterFileError("register_too_many_rows",
                             f"文件超过 {max_rows:,} 行（不含表头），未导入；登记册请按小区分别导入", 413)


@dataclass
class Table:
    header: list[str]
    # (line number in the file, {header: text}); the header is line 1.  Read once, lazily;
    # raises RegisterFileError (too many rows, a malformed line) while being read.
    records: Iterator[tuple[int, dict[str, str | None]]]  # None: a cell the row does not have


XLSX_MAGIC = b"PK\x03\x04"


def _rewound(source: IO[bytes]) -> IO[bytes]:
    source.seek(0)
    return source


@contextmanager
def open_table(source: IO[bytes], filename: str = "", *, max_rows: int) -> Iterator[Table]:
    """The file's header and its records, read as they are consumed.

    More than ``max_rows`` non-blank rows, or more than twice that many rows in all (blank ones
    too), raise ``register_too_many_rows`` (413) as soon as the reader gets there.
    """
    start = _rewound(source).read(4)
    source.seek(0)
    if start == XLSX_MAGIC or filename.lower().endswith((".xlsx", ".xlsm")):
        with _open_xlsx(source, max_rows) as table:
            yield table
    else:
        yield _open_csv(source, max_rows)


def _encoding(source: IO[bytes], max_lines: int) -> str:
    """utf-8-sig or gb18030 (spreadsheet programs in China often save CSV as GB18030/GBK), read in
    chunks; a file of more than ``max_lines`` lines is refused before any row is parsed."""
    for encoding in ("utf-8-sig", "gb18030"):
        decoder = codecs.getincrementaldecoder(encoding)()
        _rewound(source)
        lines = 0
        try:
            while chunk := source.read(1 << 20):
                lines += chunk.count(b"\n")
                if lines > max_lines:
                    raise RegisterFileError("too_many_lines", "", 413)
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            continue
        return encoding
    raise RegisterFileError("bad_encoding", "文件编码无法识别，请另存为 UTF-8 编码的 CSV 或 xlsx")


def _text_lines(source: IO[bytes], encoding: str) -> Iterator[str]:
    decoder = codecs.getincrementaldecoder(encoding)()
    rest, end = "", ""
    _rewound(source)
    while chunk := source.read(1 << 16):
        text = rest + decoder.decode(chunk)
        # Lines end at "\n" ("\r\n" keeps its "\r", which csv reads as part of the ending), or at
        # "\r" in a file that has no "\n" (old Mac files); other line breaks (U+2028 ...) may sit
        # inside a cell.  The last piece may go on.
        end = end or ("\r" if "\r" in text and "\n" not in text else "\n")
        *lines, rest = text.split(end)
        for line in lines:
            yield line + end
    rest += decoder.decode(b"", final=True)
    if rest:
        yield rest


def _open_csv(source: IO[bytes], max_rows: int) -> Table:
    try:
        encoding = _encoding(source, 2 * max_rows + 1)
    except RegisterFileError as exc:
        if exc.code == "too_many_lines":
            raise too_many_rows(max_rows) from None
        raise
    reader = csv.reader(_text_lines(source, encoding))
    try:
        header = next(reader)
    except StopIteration:
        raise RegisterFileError("empty_file", "文件为空") from None
    except csv.Error as exc:
        raise RegisterFileError("bad_csv", f"CSV 格式错误：{exc}") from None
    header = [h.strip() for h in header]
    return Table(header, _csv_records(reader, header, max_rows))


def _csv_records(reader, header: list[str], max_rows: int) -> Iterator[tuple[int, dict[str, str | None]]]:
    count = 0
    try:
        for row in reader:
            if reader.line_num > 2 * max_rows + 1:
                raise too_many_rows(max_rows)
            if not any(cell.strip() for cell in row):
                continue  # blank line
            count += 1
            if count > max_rows:
                raise too_many_rows(max_rows)
            values: dict[str, str | None] = {
                name: (row[i].strip() if i < len(row) else None) for i, name in enumerate(header)}
            if len(row) > len(header) and any(cell.strip() for cell in row[len(header):]):
                values["\x00extra"] = str(len(row) - len(header))
            yield reader.line_num, values
    except csv.Error as exc:
        raise RegisterFileError("bad_csv", f"CSV 第 {reader.line_num} 行格式错误：{exc}") from None


def _cell_text(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        # Excel stores 88.5 as a float; render it back without float noise, keeping at
        # most the digits a person typed (repr gives the shortest round-trip form).
        text = repr(value)
        if "e" in text or "E" in text:
            return format(value, "f")
        return text[:-2] if text.endswith(".0") else text
    return str(value).strip()


def _check_xlsx_parts(source: IO[bytes]) -> None:
    try:
        with zipfile.ZipFile(_rewound(source)) as archive:
            for info in archive.infolist():
                if not info.filename.startswith("xl/worksheets/") and info.file_size > MAX_XLSX_PART:
                    raise RegisterFileError(
                        "xlsx_too_large", f"xlsx 文件中的 {info.filename[:100]} 解压后超过 "
                        f"{MAX_XLSX_PART // (1024 * 1024)} MB，请另存为 CSV 后导入", 413)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        if isinstance(exc, RegisterFileError):
            raise
        raise RegisterFileError("bad_xlsx", "无法读取 xlsx 文件，请确认文件未损坏") from None


_ROW_START = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?row[\s/>]")


_MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_REL_ID = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"


def _first_sheet_path(source: IO[bytes]) -> str | None:
    """The part name of the workbook's first sheet (``xl/worksheets/sheet1.xml``), None if unclear."""
    from xml.etree import ElementTree

    try:
        with zipfile.ZipFile(_rewound(source)) as archive:
            workbook = ElementTree.fromstring(archive.read("xl/workbook.xml"))
            rels = ElementTree.fromstring(archive.read("xl/_rels/workbook.xml.rels"))
    except (KeyError, zipfile.BadZipFile, OSError, EOFError, zlib.error, ElementTree.ParseError):
        return None
    sheet = workbook.find(f"{_MAIN}sheets/{_MAIN}sheet")
    if sheet is None:
        return None
    for rel in rels:
        if rel.get("Id") == sheet.get(_REL_ID):
            target = rel.get("Target") or ""
            return target.lstrip("/") if target.startswith("/") else "xl/" + target
    return None


def _count_sheet_rows(source: IO[bytes], path: str | None, max_rows: int) -> None:
    """Refuse a sheet whose row elements with a value (the header's included) are more than
    ``max_rows`` + 1, or whose row elements are more than ``2 * max_rows + 1`` in all, before
    openpyxl parses any: the unpacked XML is split at its row tags as bytes, far faster than
    rows are read.  It may count a row less (a tag cut between two chunks), and counts a row
    whose only values are empty elements (``<v></v>``) as one with a value; the reader's own
    count, which applies the same limits, is exact."""
    if not path:
        return
    rows = valued = 0
    try:
        with zipfile.ZipFile(_rewound(source)) as archive, archive.open(path.lstrip("/")) as sheet:
            tag = b""
            pending = b""
            while True:
                chunk = sheet.read(1 << 20)
                data = pending + chunk
                if not tag:
                    first = _ROW_START.search(data)
                    if first is None:
                        if not chunk:
                            return
                        pending = data[-64:]
                        continue
                    tag = data[first.start():first.end() - 1]  # b"<row", or b"<x:row" in a namespace
                    namespace = tag[:-3]
                    markers = [namespace + m for m in (b"v>", b"v ", b"t>", b"t ")]
                pieces = data.split(tag)
                pending = tag + pieces.pop() if chunk and len(pieces) > 1 else b""
                for piece in pieces[1:]:
                    rows += 1
                    if any(marker in piece for marker in markers):
                        valued += 1
                if rows > 2 * max_rows + 1 or valued > max_rows + 1:
                    raise RegisterFileError("too_many_lines", "", 413)
                if not chunk:
                    return
    except (KeyError, zipfile.BadZipFile, OSError, EOFError, zlib.error):
        return  # openpyxl will say what is wrong with it


@contextmanager
def _open_xlsx(source: IO[bytes], max_rows: int) -> Iterator[Table]:
    import openpyxl  # only when needed

    _check_xlsx_parts(source)
    try:
        # before openpyxl opens the book, which parses a whole sheet that has no <dimension>
        _count_sheet_rows(source, _first_sheet_path(source), max_rows)
    except RegisterFileError:
        raise too_many_rows(max_rows) from None
    try:
        book = openpyxl.load_workbook(_rewound(source), read_only=True, data_only=True)
    except Exception:
        raise RegisterFileError("bad_xlsx", "无法读取 xlsx 文件，请确认文件未损坏") from None
    try:
        if not book.worksheets:
            raise RegisterFileError("empty_file", "文件为空")
        sheet = book.worksheets[0]
        try:
            header_row = next(sheet.iter_rows(max_row=1, max_col=MAX_XLSX_COLUMNS, values_only=True), None)
        except Exception:
            raise RegisterFileError("bad_xlsx", "无法读取 xlsx 文件，请确认文件未损坏") from None
        if header_row is None:
            raise RegisterFileError("empty_file", "文件为空")
        header = [(_cell_text(h) or "") for h in header_row]
        while header and header[-1] == "":
            header.pop()
        yield Table(header, _xlsx_records(sheet, header, max_rows))
    finally:
        book.close()


def _xlsx_records(sheet, header: list[str], max_rows: int) -> Iterator[tuple[int, dict[str, str | None]]]:
    count = 0
    width = len(header)
    rows = sheet.iter_rows(min_row=2, max_col=width + 1, values_only=True)
    index = 1
    while True:
        try:
            row = next(rows, None)
        except Exception:  # a malformed sheet (openpyxl raises many kinds)
            raise RegisterFileError("bad_xlsx", f"xlsx 第 {index + 1} 行无法读取，请确认文件未损坏") from None
        if row is None:
            return
        index += 1
        if index > 2 * max_rows + 1:
            raise too_many_rows(max_rows)
        cells = [_cell_text(v) for v in row]
        if not any(c for c in cells):
            continue
        count += 1
        if count > max_rows:
            raise too_many_rows(max_rows)
        values: dict[str, str | None] = {name: (cells[i] if i < len(cells) else None) for i, name in enumerate(header)}
        if any(c for c in cells[width:]):
            values["\x00extra"] = "1"
        yield index, values


@dataclass(frozen=True)
class LoadedTable:
    header: list[str]
    records: list[tuple[int, dict[str, str | None]]]


def read_table(data: bytes, filename: str = "", *, max_rows: int = 200_000) -> LoadedTable:
    """Header and every record of a small in-memory file (other uploads read alike: campaigns)."""
    with open_table(io.BytesIO(data), filename, max_rows=max_rows) as table:
        return LoadedTable(table.header, list(table.records))
