#!/bin/bash
# Resident memory (KB) of the given processes, once a minute while any of them runs: how a training's memory grows
# over its steps and validations.
#
#   scripts/watch_rss.sh "$(pgrep -d, -f 'python -m gpt.train')" > rss.log &
PIDS=${1:?usage: scripts/watch_rss.sh PID[,PID...]}
while RSS=$(ps -o rss= -p "$PIDS"); do
  echo "$(date +%T) $(echo "$RSS" | tr '\n' ' ')"
  sleep 60
done
