"""The HTTP service and command line of travelrisk."""
