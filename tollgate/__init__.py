"""tollgate: routing and billing core for small carriers (shared settings and names)."""
__version__ = "0.1.0"
