"""Project-defined model definitions (PyTorch; need the `torch` extra)."""
