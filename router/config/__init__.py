"""routes.yaml: the typed schema, the loader (positions, ${VAR}), the semantic checks."""
