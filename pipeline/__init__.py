"""evil-twins: find mislabelled samples, above all evil twins (look-alike copies with a different label)."""
