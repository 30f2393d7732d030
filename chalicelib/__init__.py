"""Owned analytics: collect → validate → sink → convert → export.

Only ``app.py`` and this package are deployed to Lambda, so everything the
handlers run lives here; ``exporter/`` and ``deploy/`` are command lines on top of it.
"""
