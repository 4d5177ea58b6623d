"""Gate evaluation: facts in, verdict out."""
