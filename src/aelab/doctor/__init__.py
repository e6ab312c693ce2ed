"""The shape doctor: records and context (`records`), the explainers (`explainers/`), the fix-and-retrace loop
(`diagnose`). The public entry point is `aelab.diagnose`."""
