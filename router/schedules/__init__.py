"""Who is on call when: rotations and overrides (pure), and the directory that resolves
`oncall:<name>` at send time. Below config: the schema holds typed rotations, and stores
and channels use these types."""
