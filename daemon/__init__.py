"""gridhall: the daemon of a district command center."""

__version__ = "0.3.0"
