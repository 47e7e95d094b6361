"""Built-in scenarios (YAML), loaded by name: `racelab run --scenario oct-2025`."""
