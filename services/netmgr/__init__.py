"""EC2 Network Manager: the propagation queue that gives new instances their network state."""
