"""The statistical model: case-control logistic regression, trained and scored from a JSON artifact."""
