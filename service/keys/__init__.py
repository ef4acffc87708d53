"""API keys: bearer credentials, each bound to one tenant and one role, stored only as hashes."""
