"""Every byte perfreport writes, one concern per module: `files` (atomic_write), `names` (safe
file and folder names), `staging` (staged publish and recovery), `locks` (one run per output
folder), `zipfiles` (deterministic zips), `summarybook` and `summarystats` (汇总表),
`problembook` (校验报告), `manifest`, and `folders`
(whether a workbook may write to its output folder).
"""
