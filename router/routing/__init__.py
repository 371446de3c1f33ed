"""Which receivers an alert reaches: matchers, the route tree, time intervals, inhibition."""
