"""Situations between a home country and a destination: the analyst API."""
