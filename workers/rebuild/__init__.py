"""Zero-downtime rebuilds of the reports index from stored raw pages.

A rebuild fills a new physical index while the `reports` alias keeps serving
the old one, then swaps the alias in one atomic `update_aliases` call:

    lock -> create target (its replicas, refresh off) -> shadow on -> checkpoint
    -> chunks (Celery tasks) -> restore settings -> catch up + verify -> swap
    -> catch up again if the crawl wrote meanwhile -> shadow off -> failures
    -> delete (or keep) the old index

Where each part lives:

    state.py        the run state in Redis (what, into which index, from which checkpoint, whose)
    context.py      the clients, settings, index names and keys every step works with
    lock.py         one rebuild at a time: the lock, its heartbeat, fencing of every write
    reading.py      one `_id` slice of an index; the raw pages written since a checkpoint
    chunks.py       the copy (re-parse or copy into the target) and the catch-up; gone pages
    verify.py       the count and shrink checks before the swap, the catch-up after it
    steps.py        start or resume a run; complete it (verify, swap, finish)
    coordinator.py  `report-ingest reindex`: the CLI process drives the run and shows progress
    tasks.py        the Celery tasks: chunks, and the rebuild as a chord that needs one worker slot
    progress.py     chunk progress from Redis counters

The alias helpers (which index serves, the swap, the listing) are index code:
workers/index/aliases.py.
"""
