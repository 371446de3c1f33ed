"""Which receivers an alert reaches: the route tree, a config's time intervals, inhibition."""
