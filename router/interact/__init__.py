"""Acting on a group from Slack: the clicks, what they did, and the worker carrying them out."""
