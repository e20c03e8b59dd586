"""Every byte perfreport writes: atomic files and names, staged publish and recovery, locks, tables,
the zip and the manifest.
"""
