"""The shell every process shares: config, simulated clock, telemetry, gRPC and DNS helpers, fault hooks."""
