"""A tenant's review policy: which bands need a review, how many approvals a severe trip needs, and
stricter band thresholds; every change is a new version."""
