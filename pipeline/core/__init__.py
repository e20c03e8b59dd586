"""Pure arithmetic and text: records, scoring profile, indicators, formatting, the template context
(with its field table), the figures of summary rows taken together, header folding and Excel
column letters.

Imports only the standard library, `pipeline.errors` and `pipeline.core` (`pipeline.config` stands
on core, since `Settings` holds the scoring profile): no pandas, pandera, prefect, openpyxl, docxtpl
or numpy, so the arithmetic can be imported, tested and reused alone (tests/test_architecture.py
checks it in a fresh interpreter).
"""
