"""ParkCard hub: the central service of a park's stored-value card system."""

__version__ = "0.1.0"
