"""The destinations the service scores, and the third countries it knows of."""
