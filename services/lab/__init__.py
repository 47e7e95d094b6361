"""What users run: the CLI, the explorer, scenarios, reports."""
