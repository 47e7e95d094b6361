"""racelab's processes: one package per service (`python -m services.<service>`), plus core (the incident's logic), runtime (the shared shell) and lab (what users run)."""
