"""The deterministic twins: the race's world (sim, explore) and the cascade's."""
