"""What the route refused, kept as reject records: their format (record.py, the one module
that writes and reads them), counting and CSV (summary.py), and replay (revalidate.py,
replay.py). May import ingest (a replay is the route's own validation); ingest imports only
``record`` from here. Never imports csv conversion jobs, dev or a CLI.
"""
