"""Pure rules of the park: no I/O, no SQL, no asyncio (lifecycles, accounts, postings, ingest decisions)."""
