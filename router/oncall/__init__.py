"""The `alert-router oncall` command (the rotations themselves are in router/schedules/)."""
