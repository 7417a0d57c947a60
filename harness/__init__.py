"""Uncertainty benchmark harness: recipes -> trained models -> OOD detection and calibration -> records."""

__version__ = "0.1.0"
