"""Runs already made: listed and found from the journals, and undone."""
