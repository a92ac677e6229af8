"""Watches: tell someone when a report they care about appears, or its tier changes.

- `config.py`: the watches file (WATCHES_FILE), validated like the sources file: every
  mistake with file, line and field.
- `alerts.py`: the alert record and its index; which written reports match which watch, and
  the alert each gets (one per report and tier, never per copy).
- `tasks.py`: `raise_alerts` (the check, for the IDs an index batch wrote) and `deliver_alert`,
  the webhook POST under the crawl's network policy, retried with capped, jittered back-off
  until it is delivered.

The index task sends the IDs it wrote to `raise_alerts` by name, before the batch leaves staging,
so a check is never lost between the write and the hand-over, and the index stage imports
nothing of the watches.
"""
