"""Test and benchmark harnesses (not shipped): authority processes, DNS fuzzing, kill -9 durability."""
