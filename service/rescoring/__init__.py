"""Re-scoring upcoming assessments when the reference data they rest on changes."""
