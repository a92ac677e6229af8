"""Reading the reports index: faceted search (`faceted.py`), copies of one report (`copies.py`),
deep pages (`paging.py`), conflicts between copies (`conflicts.py`), exports (`export.py`).

Each is imported from its own module: `workers.search.copies` is read by commands that never
search.
"""
