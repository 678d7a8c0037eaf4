"""smp-spark: a distributed feature pipeline and models for SMPD social-media popularity."""

__version__ = "0.1.0"
