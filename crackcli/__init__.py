"""crack: crack inspection toolkit for concrete photos."""

__version__ = "0.1.0"
