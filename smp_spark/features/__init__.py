"""Leakage-safe feature families (one module each) and the gold feature table."""
