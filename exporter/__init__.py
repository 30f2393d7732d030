"""Data command line: exports, ad-hoc conversion and the Athena query.

Run as ``python -m exporter --help``. The conversion itself lives in
``chalicelib`` (it is also what the Lambda handlers run); the deployment
commands are ``python -m deploy``.
"""
