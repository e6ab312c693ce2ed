"""Pure size arithmetic of layers (output sizes, per-dimension hyper-parameters) and its inverse."""
