"""Review decisions on assessments: four-eyes rules, an append-only record, the review queue."""
