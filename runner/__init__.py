"""alloclab: measure how memory allocation really behaves on this Linux machine."""

__version__ = "0.1.0"
