"""Pure arithmetic and text: records, scoring profile, indicators, formatting and the template context.

Imports only the standard library, `pipeline.errors` and `pipeline.core` (`pipeline.config` stands on
core: `Settings` holds the scoring profile):
no pandas, pandera, prefect, openpyxl, docxtpl or numpy (tests/test_architecture.py checks it).
"""
