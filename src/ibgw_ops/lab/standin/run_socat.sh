#!/bin/bash
# The image's stable/scripts/run_socat.sh: real socat, restarted after 5 s if it ends. Each connection accepted
# while the gateway does not listen yet makes socat log its connect error to the container log.
set -Eo pipefail
while true; do
	printf "Forking :::%d onto 0.0.0.0:%d > trading mode %s \n" "${API_PORT}" "${SOCAT_PORT}" "${TRADING_MODE}"
	socat TCP-LISTEN:"${SOCAT_PORT}",fork TCP:127.0.0.1:"${API_PORT}"
	sleep "${SSH_RESTART:-5}"
done
