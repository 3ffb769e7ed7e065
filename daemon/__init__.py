"""gridhall: the daemon of a district command center."""

__version__ = "0.1.0"
