"""From webhook bodies to recorded notifications: source parsers, normalization, intake."""
