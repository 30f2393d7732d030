"""Delivery measured from the stored events: per session, which numbered events (``seq``)
arrived, the gaps and duplicates, and the rate. Reads stored data only (layout, storage,
csv reading); never imports ingest, dev or a CLI.
"""
