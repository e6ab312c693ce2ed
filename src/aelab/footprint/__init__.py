"""How much memory one training step needs: `memory()` (the driver), `MemoryReport`, the pure analysis."""
