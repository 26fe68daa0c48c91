"""Training code for fakescope's embedded `builtin` detector (torch needed here only)."""
