"""Reading an .xlsx: safety refusals, the sheet-XML scan, cells and sheet layout, the fast reader and
the openpyxl fallback. Knows nothing of the workbook contract.
"""
