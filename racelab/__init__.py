"""racelab's generated wire contracts (see proto/). Do not edit: run `make proto`."""
