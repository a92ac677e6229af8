"""Which URLs serve each document: several addresses of one canonical page (a mirror path, a
trailing slash, a redirect) all make the same document, and a 404 on one of them must not
delete it while another still serves it (the live one rechecks as unchanged and would never
write it again).

The index task adds a URL to each document it wrote for it (with the crawl state, in the same
pipeline), and a gone URL is taken off its documents in one script, which says which of them
no URL serves any more: those alone are deleted (or flagged). A document indexed before these
sets existed has none, and goes with its first gone URL, as it always did.
"""

from __future__ import annotations

import redis

from workers.keys import Keys

# KEYS: the documents' URL sets; ARGV[1] the gone URL. Returns the indexes (1-based) of the
# documents no URL serves any more.
_RELEASE = """
local orphaned = {}
for i, key in ipairs(KEYS) do
  redis.call('SREM', key, ARGV[1])
  if redis.call('SCARD', key) == 0 then orphaned[#orphaned + 1] = i end
end
return orphaned
"""


class ServingUrls:
    def __init__(self, client: redis.Redis, namespace: str):
        self.redis, self.keys = client, Keys(namespace)
        self._release = client.register_script(_RELEASE)

    def serve(self, url: str, document_ids: list[str], dropped: list[str], pipe: redis.client.Pipeline) -> None:
        """`url` makes `document_ids` now, and no more `dropped` (queued on `pipe`)."""
        for document_id in document_ids:
            pipe.sadd(self.keys.document_urls(document_id), url)
        for document_id in dropped:
            pipe.srem(self.keys.document_urls(document_id), url)

    def release(self, url: str, document_ids: list[str]) -> list[str]:
        """`url` is gone: of its documents, those no other URL serves."""
        if not document_ids:
            return []
        orphaned = self._release(keys=[self.keys.document_urls(i) for i in document_ids], args=[url])
        return [document_ids[i - 1] for i in orphaned]
