"""A 404 on one address of a page deletes its document only once no other address serves it
(real Elasticsearch and Redis)."""

from __future__ import annotations

import uuid

from tests.test_index_versions import fetched, write
from workers.index.staging import Staging
from workers.index.tasks import BatchWriter, indices_ready
from workers.records import DocumentEntry, GoneEntry


def gone(settings, es, redis_client, url: str, document_ids: list[str]) -> None:
    queue = Staging(redis_client, settings.index_prefix)
    entry = GoneEntry(url, None, None, document_ids)
    queue.put(entry.key, entry.to_json(), trigger_ttl=60)
    BatchWriter(es, settings, queue).write(queue.take(10), careful=False)
    assert queue.size() == 0


def test_a_404_on_one_address_keeps_the_document_another_address_serves(settings, es, names, redis_client):
    indices_ready(settings.index_prefix, str(settings.schemas_dir))
    base = f"https://example.org/shared-{uuid.uuid4().hex[:8]}"
    first = fetched(f"{base}/a", 403, "2025-06-01T00:00:00+00:00", '"a"')
    # The same canonical page under a second address: the same document.
    second = DocumentEntry(f"{base}/b", None, None, first.documents, fetched(f"{base}/b", 403,
                           "2025-06-01T00:00:01+00:00", '"b"').raw)
    write(settings, es, redis_client, first)
    write(settings, es, redis_client, second)
    document_id = first.document_ids[0]
    gone(settings, es, redis_client, first.url, [document_id])
    assert es.exists(index=names.reports, id=document_id)  # /b still serves it
    gone(settings, es, redis_client, second.url, [document_id])
    assert not es.exists(index=names.reports, id=document_id)  # now no address does
