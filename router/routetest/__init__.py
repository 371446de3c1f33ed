"""Route test files: cases of labels and the receivers they must reach (`alert-router test`)."""
