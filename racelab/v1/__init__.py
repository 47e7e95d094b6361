"""Generated from proto/racelab/v1/*.proto by tools/gen_proto.py. Do not edit."""
