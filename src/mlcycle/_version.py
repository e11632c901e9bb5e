"""The installed version of mlcycle."""

__version__ = "0.1.0"
