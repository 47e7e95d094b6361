"""The run's report: the page, its plots, the fidelity and what-if tables."""
