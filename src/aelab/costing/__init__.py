"""What backward costs for a trainable subset: selection and the cost driver (`cost`), the backward analysis
(`backward`), wall-clock timing (`timing`). The public entry point is `aelab.cost`."""
