"""Training: the data, the candidate pipelines, cross-validation, our transformers, lineage."""
