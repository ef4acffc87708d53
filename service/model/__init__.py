"""The active model: its factors, its card, and the record of every model version that has scored."""
