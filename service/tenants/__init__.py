"""Tenants: the organisations whose keys and assessments are kept apart from each other."""
