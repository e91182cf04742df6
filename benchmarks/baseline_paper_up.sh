#!/usr/bin/env bash
# Baseline for 'paper-up': the bare minimum on the same lab VM. One SSH connection that starts the paper compose
# project and polls the TWS handshake (the same stdlib probe, fed on stdin) until the gateway is ready.
# Usage: baseline_paper_up.sh KEY KNOWN_HOSTS ADDRESS PROBE_SCRIPT
set -euo pipefail
key=$1 known_hosts=$2 address=$3 probe_script=$4
ssh -i "$key" -o IdentitiesOnly=yes -o UserKnownHostsFile="$known_hosts" -o StrictHostKeyChecking=yes \
  -o BatchMode=yes "root@$address" \
  'docker compose --project-directory /opt/ibgw/paper up --detach --no-build --quiet-pull && python3 -' \
  < "$probe_script"
