"""Replaying recorded events through two configs, and what the records say about noise."""
