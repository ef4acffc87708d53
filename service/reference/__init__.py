"""Reference data in the database: situations, employer disputes, destination and third-country profiles,
their revision history, and the snapshot the scoring engine reads."""
