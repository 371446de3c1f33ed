"""When: on-call rotations and overrides (pure), the directory that resolves `oncall:<name>`
at send time, and the time-interval language. Below config: the schema holds these parsed
types, and stores and channels use them."""
