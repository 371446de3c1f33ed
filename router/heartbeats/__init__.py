"""Heartbeats: something that must be heard from regularly (Alertmanager's Watchdog, a
CronJob), and the HeartbeatMissing event when it is not.

Beats come from alerts matching a heartbeat's matchers (recorded, never notified) and from
`POST /heartbeat/{name}`; the store keeps the last beat of each. One replica at a time
(a store lease) judges them and records HeartbeatMissing through the route tree like any
alert, and its resolve once beats resume.
"""
