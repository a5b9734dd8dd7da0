"""Live tallies of open meetings and the events that feed them."""
