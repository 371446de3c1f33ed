"""Who is on call: rotations (pure), overrides, and resolving `oncall:<name>` at send time."""
