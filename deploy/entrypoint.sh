#!/bin/sh
# The racelab image's entry point.
#   SERVICE [FLAGS]     runs `python -m services.SERVICE` (authority, planner, enactor, ...)
#   racelab COMMAND     runs the racelab command (follow, wait-dns, explore, ...)
set -eu
if [ "$#" -eq 0 ]; then
  echo "usage: racelab-service SERVICE [FLAGS] | racelab COMMAND [ARGS]" >&2
  exit 2
fi
name=$1
shift
case "$name" in
  racelab) exec racelab "$@" ;;
  ""|*[!a-z]*) echo "racelab-service: not a service name: $name" >&2; exit 2 ;;
esac
exec python -m "services.$name" "$@"
