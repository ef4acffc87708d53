"""Organisations in a dispute with a destination: the analyst API."""
