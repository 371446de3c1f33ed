"""Slack delivery: the channel (Web API and incoming webhooks) and its Block Kit payloads."""
