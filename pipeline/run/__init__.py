"""One workbook, batch: the steps (plain functions), the Prefect flow that wires them, the runtime.
"""
