"""The command-line side of Athena: ``python -m exporter athena-query`` (``command``).

The SQL, the runner and the command's orchestration (``chalicelib.athena.on_demand``)
live in ``chalicelib.athena`` (the Lambda handlers build the same queries); import them
from there.
"""
