"""The `aelab` command: `main` (entry point `aelab.cli:main`), spec loading (`load`), one module per verb."""

from aelab.cli.main import main

__all__ = ["main"]
