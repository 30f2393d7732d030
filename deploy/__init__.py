"""Deployment commands: configure, throttle and smoke-test the prod stage; price it.

Run as ``python -m deploy --help``. The data commands (export, json-to-csv,
athena-query) are ``python -m exporter``; neither package imports the other.
"""
