#!/usr/bin/env bash
# Runs after every other test (CTest FIXTURES_CLEANUP): fails if a process started by this test
# run is still alive, or if a test left a file in the run's temp directory.
set -uo pipefail
tmp=$1 run_id=$2
status=0
for environ in /proc/[0-9]*/environ; do
  pid=${environ#/proc/}; pid=${pid%/environ}
  # This script runs without the run id in its environment, so only the run's own children match.
  if { tr '\0' '\n' < "$environ"; } 2>/dev/null | grep -qx "VMRT_TEST_RUN_ID=$run_id"; then
    echo "leftover process $pid: $(tr '\0' ' ' < /proc/$pid/cmdline 2>/dev/null)"
    status=1
  fi
done
if [[ -d $tmp ]] && [[ -n $(find "$tmp" -mindepth 1 -print -quit) ]]; then
  echo "leftover files in $tmp:"; find "$tmp" -mindepth 1 | head -20
  status=1
fi
((status == 0)) && echo "no leftover process or temp file"
exit $status
