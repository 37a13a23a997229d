"""Redis persistence: job records, client keys, rate limits, the Lua scripts, the
connection pool and the embedded server."""
