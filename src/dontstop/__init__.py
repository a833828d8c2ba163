"""dontstop: rerun, inspect and extend "Don't Stop Pretraining" (Gururangan et al., ACL 2020)."""
__version__ = "0.1.0"
