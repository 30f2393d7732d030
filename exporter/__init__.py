"""Data command line: exports, conversion of files, delivery, rejects and replay,
erasure, the report and the Athena query.

Run as ``python -m exporter --help``. ``cli`` only names the commands; each lives in its
own module (``convert``, ``delivery``, ``rejects``, ``erase``, ``athena/``, ``report/``)
and takes its shared options and helpers from ``options``; none imports ``cli``. The
work itself is ``chalicelib``'s (also what the Lambda handlers run); the deployment
commands are ``python -m deploy``, which this package never imports.
"""
