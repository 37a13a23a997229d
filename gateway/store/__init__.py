"""Persistence: in Redis, job records, client keys, rate limits, the Lua scripts, the
connection pool and the embedded server; in a folder or S3, the artefact store
(``artefacts.py``, ``objects.py``) and its signed download URLs (``signing.py``)."""
