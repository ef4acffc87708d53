"""Assessments: scored trips, stored with their request, response and versions."""
