"""Editions: one country's report across the years of a series, read from the reports index.

- `moves.py`: the move between two tiers (`up`, `down`, `same`, `new`, `unknown`).
- `read.py`: the editions in the index (one per country, series and year, copies collapsed),
  read in pages of a composite aggregation; `history` and `tiers` are built on it.
- `matrix.py`: the country x year matrix of tiers (`report-ingest tiers`).
- `diff.py`: what changed between two editions, section by section, paragraph by paragraph,
  and the word-level difference of a reworded paragraph. Pure functions.

The index stage writes what these read; nothing here writes.
"""
