"""`python -m deploy`: run the deployment command line."""

from __future__ import annotations

from deploy.cli import main

if __name__ == "__main__":
    main()
