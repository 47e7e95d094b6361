"""The live replica: the run's supervisor, its telemetry sinks, Prometheus, the terminal view."""
