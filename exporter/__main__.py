from __future__ import annotations

from exporter.cli import main

main()
