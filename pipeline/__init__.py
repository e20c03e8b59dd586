"""perfreport: workbook in, one Word performance-evaluation report per project out."""

__version__ = "0.1.0"
