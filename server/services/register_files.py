"""Turning an uploaded register file (CSV or .xlsx) into header + numbered records.

Only decoding lives here; what the columns must hold is checked by
``server.ballot.register_table``.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass


class RegisterFileError(ValueError):
    """The file itself cannot be read (not the rows in it)."""

    def __init__(self, code: str, message: str):
        self.code = code
        self.message = message
        super().__init__(message)


@dataclass(frozen=True)
class Table:
    header: list[str]
    # (line number in the file, {column: text}); the header is line 1
    records: list[tuple[int, dict[str, str | None]]]  # None: a cell the row does not have


XLSX_MAGIC = b"PK\x03\x04"


def read_table(data: bytes, filename: str = "") -> Table:
    if data.startswith(XLSX_MAGIC) or filename.lower().endswith((".xlsx", ".xlsm")):
        return _read_xlsx(data)
    return _read_csv(data)


def _decode(data: bytes) -> str:
    # Spreadsheet programs in China often save CSV as GB18030/GBK; accept both.
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError:
        raise RegisterFileError("bad_encoding", "文件编码无法识别，请另存为 UTF-8 编码的 CSV 或 xlsx") from None


def _read_csv(data: bytes) -> Table:
    text = _decode(data)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise RegisterFileError("empty_file", "文件为空") from None
    except csv.Error as exc:
        raise RegisterFileError("bad_csv", f"CSV 格式错误：{exc}") from None
    header = [h.strip() for h in header]
    records = []
    try:
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue  # blank line
            line = reader.line_num
            values = {name: (row[i].strip() if i < len(row) else None) for i, name in enumerate(header)}
            if len(row) > len(header):
                values["\x00extra"] = str(len(row) - len(header))
            records.append((line, values))
    except csv.Error as exc:
        raise RegisterFileError("bad_csv", f"CSV 第 {reader.line_num} 行格式错误：{exc}") from None
    return Table(header, records)


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


def _read_xlsx(data: bytes) -> Table:
    import openpyxl  # only when needed
    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception:
        raise RegisterFileError("bad_xlsx", "无法读取 xlsx 文件，请确认文件未损坏") from None
    try:
        sheet = book.worksheets[0]
        rows = sheet.iter_rows(values_only=True)
        header_row = next(rows, None)
        if header_row is None:
            raise RegisterFileError("empty_file", "文件为空")
        header = [(_cell_text(h) or "") for h in header_row]
        while header and header[-1] == "":
            header.pop()
        records = []
        for index, row in enumerate(rows, start=2):
            cells = [_cell_text(v) for v in row]
            if not any(c for c in cells):
                continue
            values = {name: (cells[i] if i < len(cells) else None) for i, name in enumerate(header)}
            if any(c for c in cells[len(header):]):
                values["\x00extra"] = "1"
            records.append((index, values))
        return Table(header, records)
    finally:
        book.close()
