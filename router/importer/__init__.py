"""`alert-router import`: an Alertmanager config turned into routes.yaml plus a forwarding
alertmanager.yml, with a report of whatever has no equivalent."""
