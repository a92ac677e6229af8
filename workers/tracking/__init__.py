"""What the crawl keeps in Redis and both stages write: each crawl's progress, each URL's state.

The fetch stage and the index stage both mark progress and update URL states, so these live
below both (docs/architecture.md), beside the records and keys.
"""
