"""The workbook contract: sheet schemas, cell parsing (including the ≥90% grammar), validation, and
the records built from a valid workbook.
"""
