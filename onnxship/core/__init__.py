"""What every stage shares: errors, params, files, artifact paths, the stage runner."""
