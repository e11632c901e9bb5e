"""Worked examples that use mlcycle end to end."""
