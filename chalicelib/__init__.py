"""Owned analytics: collect → validate → sink → convert → export.

Only ``app.py`` and this package are deployed to Lambda, so everything the handlers run
lives here, one folder per stage: ``ingest/`` (the route), ``rejects/``, ``csv/`` (the
converter), ``delivery/``, ``erase/``, ``athena/``, ``storage/`` and ``dev/`` (``chalice
local`` only); beside them the few modules every stage shares (``config``, ``aws``,
``layout``, ``jobs``, ``sinks``, ``daily_schedule``, ``terminal``, ``workers``).
Nothing here imports ``exporter/``, ``deploy/``, ``clitools`` or click: those are the
command lines on top of it, and the Lambda zip does not ship them.
"""
