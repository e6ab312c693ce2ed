"""Inspect a model: per-layer summary, data flow, bottleneck, hints, and the Report (`aelab.inspect`)."""
