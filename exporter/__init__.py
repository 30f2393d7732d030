"""Command line for the pipeline: exports, ad-hoc conversion and operations.

Run as ``python -m exporter --help``. The conversion itself lives in
``chalicelib`` (it is also what the Lambda handlers run).
"""
