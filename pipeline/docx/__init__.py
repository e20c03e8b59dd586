"""Templates to reports: the sandboxed Jinja environment, the compiled renderer, the template check.
"""
