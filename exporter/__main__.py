"""`python -m exporter`: run the data command line."""

from __future__ import annotations

from exporter.cli import main

# The guard matters: parallel exports start worker processes that import this module.
if __name__ == "__main__":
    main()
