"""Reading an .xlsx: safety refusals, the sheet-XML scan, cells and sheet layout, the fast reader and
the openpyxl fallback. Knows nothing of the workbook contract.

`reader.read_workbook` is the entry point; `refusal` and `archive` refuse files before any parser
sees them; `sheetxml` scans the XML for formats and formulas, `table` turns rows into a sheet's
raw table, `cells` converts values, `merged` reports merged cells, `layout` holds the records,
and `fallback` reads with openpyxl what the fast reader cannot place.
"""
