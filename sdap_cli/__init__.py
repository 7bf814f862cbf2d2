"""sdap: self-supervised real-noise removal with SDAP (Pan et al., ICCV 2023)."""

__version__ = "0.1.0"
