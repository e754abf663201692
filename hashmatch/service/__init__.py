"""`hashmatch serve` (the optional extra ``hashmatch[serve]``): the upload-scanning
service platforms deploy.

    app.py      the HTTP interface (Starlette): routes, auth, body cap, backpressure, audit
    live.py     the matcher over a live store: background load, atomic swaps
    audit.py    the audit log, written in batches by a background thread
    tokens.py   bearer tokens: the token file (hashed secrets), scopes, checking
    metrics.py  Prometheus metrics
    openapi.py  the OpenAPI description of every endpoint

May import: hashmatch.scan, hashmatch.matching, hashmatch.store and the layers below
(never hashmatch.cli: the CLI's `serve` command starts this, not the other way round).
"""
