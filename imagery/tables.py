"""Reading the small tables people keep in text files and spreadsheets: SRF tables, band ranges, band
centre lists.

Text (``.csv``, ``.txt`` or any other extension): cells separated by ``;``, tab, ``,`` or blanks (the
first of ``;`` tab ``,`` found anywhere in the file, else runs of blanks), quoted cells as ``csv``
reads them, '#' comment lines and empty lines skipped, a separator ending every line ignored, decimal
commas accepted when the separator is ``;`` or tab, UTF-8 (with or without BOM) or else Latin-1 (Excel
on Windows writes CSV in the ANSI code page). Spreadsheets: the first sheet of an ``.xls`` (xlrd) or
``.xlsx`` (openpyxl) workbook. Either way a table is a ``Cells``: rows of None (empty), float or str
(text that is not a number), and the name the file's user finds each cell by, as editors and Excel
show it ('line 7, column 3', "sheet 'spec', cell C7"), for error messages.

This module imports no other reader of the package: ``readers`` and ``spectral_response`` both use it.
"""
import csv
import os
import re
from dataclasses import dataclass

import numpy as np

from imagery.errors import DataError

TEXT_EXTENSIONS = (".csv", ".txt")
EXCEL_EXTENSIONS = (".xls", ".xlsx")

_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|[+-]?(nan|inf|infinity)", re.IGNORECASE)
_DECIMAL_COMMA = re.compile(r"[+-]?\d+,\d+([eE][+-]?\d+)?")


def excel_cell(row, col):
    """Excel's name of a cell from 0-based row and column indices: (6, 2) -> 'C7'."""
    letters = ""
    col += 1
    while col:
        col, rest = divmod(col - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return f"{letters}{row + 1}"


@dataclass
class Cells:
    """The cells of a text or spreadsheet table.

    rows: list of rows, each a list of None (empty cell), float, or str (text that is not a number);
    numbers: for each row its 1-based line (text) or row (sheet) number in the file; sheet: the sheet's
    name for a spreadsheet, None for text; first_column: the 0-based file column of each row's cell 0
    (non-zero for the view ``columns_from`` returns).
    """
    rows: list
    numbers: list
    sheet: str = None
    first_column: int = 0

    def where(self, i, j):
        """How the file's user finds cell (i, j): 'line 7, column 3' or "sheet 'spec', cell C7" (1-based)."""
        col = self.first_column + j
        if self.sheet is None:
            return f"line {self.numbers[i]}, column {col + 1}"
        return f"sheet {self.sheet!r}, cell {excel_cell(self.numbers[i] - 1, col)}"

    def where_row(self, i):
        """How the file's user finds row i: 'line 7' or "sheet 'spec', row 7"."""
        return f"line {self.numbers[i]}" if self.sheet is None else f"sheet {self.sheet!r}, row {self.numbers[i]}"

    def header(self):
        """The first row when all its non-empty cells are text (a header of column names), else None."""
        first = [v for v in self.rows[0] if v is not None] if self.rows else []
        return self.rows[0] if first and all(isinstance(v, str) for v in first) else None

    def columns_from(self, j):
        """The same table without its first ``j`` columns, its cells still named as in the file."""
        return Cells([row[j:] for row in self.rows], self.numbers, self.sheet, self.first_column + j)

    def find(self, predicate, first=0):
        """(i, j) of the first cell from row ``first`` on whose value satisfies ``predicate``, or None."""
        return next(((i, j) for i in range(first, len(self.rows)) for j, value in enumerate(self.rows[i])
                     if predicate(value)), None)


def _cell_value(text, decimal_comma=False):
    """None for an empty cell, a float for a number, else the stripped text."""
    text = text.strip()
    if not text:
        return None
    if decimal_comma and _DECIMAL_COMMA.fullmatch(text):
        text = text.replace(",", ".")
    return float(text) if _NUMBER.fullmatch(text) else text


def _text_cells(path, what, same_width):
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise DataError(f"{path}: cannot read the file ({exc.strerror}); check its permissions") from exc
    if b"\x00" in raw:
        raise DataError(f"{path}: a binary file, not a text {what}; save it as text (.csv/.txt) or give the "
                        "file the extension of its format")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")  # Excel on Windows writes CSV in the ANSI code page
    lines = [(n, line) for n, line in enumerate(text.splitlines(), 1)
             if line.strip() and not line.lstrip().startswith("#")]
    # The first candidate found anywhere: a line without it then fails the row-length check below
    # instead of being read whole as one text cell.
    sep = next((s for s in (";", "\t", ",") if any(s in line for _, line in lines)), None)
    texts = [line for _, line in lines]
    split = list(csv.reader(texts, delimiter=sep)) if sep else [line.split() for line in texts]
    if sep and all(row[-1].strip() == "" for row in split):
        split = [row[:-1] for row in split]  # a separator at the end of every line
    width = len(split[0]) if split else 0
    ragged = next((i for i, row in enumerate(split) if len(row) != width), None) if same_width else None
    if ragged is not None:
        raise DataError(f"{path}: line {lines[ragged][0]} has {len(split[ragged])} cells but line {lines[0][0]} has "
                        f"{width} (separator {sep or 'blank'!r}); every row needs the same number of cells")
    decimal_comma = sep != ","
    return Cells([[_cell_value(cell, decimal_comma) for cell in row] for row in split], [n for n, _ in lines])


def _excel_cells(path, ext):
    try:
        if ext == ".xls":
            import xlrd
            sheet = xlrd.open_workbook(path).sheet_by_index(0)
            name = sheet.name
            rows = [[_xls_value(cell, xlrd) for cell in sheet.row(i)] for i in range(sheet.nrows)]
        else:
            import openpyxl
            book = openpyxl.load_workbook(path, read_only=True, data_only=True)
            try:
                sheet = book.worksheets[0]
                name = sheet.title
                rows = [[_xlsx_value(v) for v in row] for row in sheet.iter_rows(values_only=True)]
            finally:
                book.close()
    except Exception as exc:
        raise DataError(f"{path}: could not read it as an Excel {ext} workbook ({exc}); save the table from "
                        "Excel as .xlsx, .xls or .csv") from exc
    numbered = [(i, row) for i, row in enumerate(rows, 1) if any(v is not None for v in row)]
    width = max((len(row) for _, row in numbered), default=0)
    padded = [row + [None] * (width - len(row)) for _, row in numbered]
    while width and all(row[width - 1] is None for row in padded):
        width -= 1
    return Cells([row[:width] for row in padded], [i for i, _ in numbered], name)


def _xls_value(cell, xlrd):
    if cell.ctype in (xlrd.XL_CELL_EMPTY, xlrd.XL_CELL_BLANK):
        return None
    if cell.ctype in (xlrd.XL_CELL_NUMBER, xlrd.XL_CELL_DATE):
        return float(cell.value)
    if cell.ctype == xlrd.XL_CELL_TEXT:
        return _cell_value(cell.value)
    if cell.ctype == xlrd.XL_CELL_ERROR:
        return xlrd.error_text_from_code.get(cell.value, "#ERROR")
    return str(cell.value).upper()  # a boolean


def _xlsx_value(value):
    if value is None:
        return None
    if isinstance(value, bool):
        return str(value).upper()
    if isinstance(value, (int, float)):
        return float(value)
    return _cell_value(str(value))


def read_cells(path, what="table", same_width=True):
    """The cells of a text or Excel (.xls, .xlsx: first sheet) table, as a ``Cells``.

    The extension picks the reader: ``EXCEL_EXTENSIONS`` are workbooks, anything else is text (the
    rules in the module docstring). Empty rows are skipped; in spreadsheets missing cells at a row's
    end are empty and fully empty trailing columns are dropped. ``what`` names the table in the
    message for a binary file ("not a text {what}"). ``same_width=False`` keeps text rows of
    different lengths as they are, for callers that check the widths themselves.
    Raises DataError naming ``path``: unreadable file, a binary (NUL-holding) file given as text, a
    workbook xlrd/openpyxl cannot read, or (with ``same_width``) text rows of different lengths.
    """
    ext = os.path.splitext(path)[1].lower()
    if ext in EXCEL_EXTENSIONS:
        return _excel_cells(path, ext)
    return _text_cells(path, what, same_width)


def numeric_rows(cells, first, path, what):
    """The float64 matrix (rows x columns) of ``cells.rows[first:]``, empty cells read as 0.

    Raises DataError naming ``path`` and the first cell that holds text; ``what`` names the table.
    """
    text = cells.find(lambda v: isinstance(v, str), first)
    if text is not None:
        i, j = text
        raise DataError(f"{path}: {cells.where(i, j)} holds {cells.rows[i][j]!r}, which is not a number; every "
                        f"cell of the {what} below the header must be a number (an empty cell counts as 0)")
    rows = cells.rows[first:]
    return np.array([[0.0 if v is None else v for v in row] for row in rows], dtype=np.float64).reshape(len(rows), -1)
