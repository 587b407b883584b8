"""Grand Rounds."""
