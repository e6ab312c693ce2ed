"""Shape-error explainers: each reads the failing trace and returns findings with the number to use."""
