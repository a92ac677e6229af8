"""Lua that finishes a delivery, for every script that does (workers/delivery.py, the staging script
of workers/index/staging.py). Apart from workers/delivery.py, which loads Celery: `status` builds a
Staging to count entries and needs none of it."""

from __future__ import annotations


def uncount_lua(key: str) -> str:
    """Lua that takes one finished delivery off the count `key` (a Lua expression), only while the
    count exists: a DECR after it expired made it again, at -1 and with no expiry, for good."""
    return f"""
if tonumber(redis.call('GET', {key}) or '0') > 0 then redis.call('DECR', {key}) end
"""
