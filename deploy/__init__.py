"""Deployment commands: configure, throttle and smoke-test the prod stage; price it.

Run as ``python -m deploy --help``. ``cli`` only registers the commands; ``target``
resolves what a deploy points at, ``cost``/``cost_athena`` (with ``prices``) are the cost
model. The data commands are ``python -m exporter``; neither package imports the other.
"""
