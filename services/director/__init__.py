"""The director: drives the scenario timeline, injects the incident's conditions, performs the operators' actions, collects events."""
