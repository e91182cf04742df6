#!/bin/bash
# Rehearsal stand-in for the image's entry point (gnzsnz/ib-gateway-docker v10.45.1j-stable: stable/scripts/run.sh
# and the functions it sources from stable/scripts/common.sh), in the same order and with the same rules:
# *_FILE variables read as file_env reads them ($(<file): a trailing CR stays), config.ini rendered from
# config.ini.tmpl with envsubst, jts.ini written only when it does not exist yet, socat forwarding the published
# port to the gateway's API port, ibcstart.sh started in the background and SIGTERM trapped. Xvfb and x11vnc are
# left out: the stand-in has no screen.
set -Eeo pipefail

echo ".> Starting IBC/IB gateway (REHEARSAL STAND-IN: not IBKR software; it never connects to IBKR)"

# common.sh file_env: VAR or VAR_FILE, never both (exit 1).
file_env() {
	local var="$1"
	local fileVar="${var}_FILE"
	if [ "${!var:-}" ] && [ "${!fileVar:-}" ]; then
		printf >&2 'error: both %s and %s are set (but are exclusive)\n' "$var" "$fileVar"
		exit 1
	fi
	local val=""
	if [ "${!var:-}" ]; then
		val="${!var}"
	elif [ "${!fileVar:-}" ]; then
		val="$(<"${!fileVar}")"
	fi
	export "$var"="$val"
}

# common.sh unset_env: only a value that came from a file is removed again.
unset_env() {
	local fileVar="${1}_FILE"
	if [ "${!fileVar:-}" ]; then
		unset "$1"
	fi
}

# common.sh set_ports: TRADING_MODE has no default.
set_ports() {
	if [ "$TRADING_MODE" = "paper" ]; then
		API_PORT=4002
		SOCAT_PORT=4004
	elif [ "$TRADING_MODE" = "live" ]; then
		API_PORT=4001
		SOCAT_PORT=4003
	else
		echo ".> Invalid TRADING_MODE: $TRADING_MODE"
		exit 1
	fi
	export API_PORT SOCAT_PORT
	echo ".> API_PORT set to: ${API_PORT}"
	echo ".> SOCAT_PORT set to: ${SOCAT_PORT}"
}

# common.sh apply_settings.
apply_settings() {
	if [ "$CUSTOM_CONFIG" != "yes" ]; then
		echo ".> Appling settings to IBC's config.ini"
		file_env 'TWS_PASSWORD'
		envsubst <"${IBC_INI_TMPL}" >"${IBC_INI}"
		unset_env 'TWS_PASSWORD'
		chmod 600 "${IBC_INI}"
		if [ -n "$TWS_SETTINGS_PATH" ]; then
			echo ".> Settings directory set to: $TWS_SETTINGS_PATH"
			_JTS_PATH=$TWS_SETTINGS_PATH
			if [ ! -d "$TWS_SETTINGS_PATH" ]; then
				echo ".> Creating directory: $TWS_SETTINGS_PATH"
				mkdir "$TWS_SETTINGS_PATH"
			fi
		else
			echo ".> Settings directory NOT set, defaulting to: $TWS_PATH"
			_JTS_PATH=$TWS_PATH
		fi
		if [ ! -f "$_JTS_PATH/$TWS_INI" ]; then
			echo ".> Setting timezone in ${_JTS_PATH}/${TWS_INI}"
			envsubst <"${TWS_PATH}/${TWS_INI_TMPL}" >"${_JTS_PATH}/${TWS_INI}"
		else
			echo ".> File jts.ini already exists, not setting timezone"
		fi
	else
		echo ".> Using CUSTOM_CONFIG, (value:${CUSTOM_CONFIG})"
	fi
}

stop_ibc() {
	echo ".> Received SIGINT or SIGTERM. Shutting down IB Gateway."
	echo ".> Stopping socat."
	pkill run_socat.sh || true
	pkill socat || true
	echo ".> Stopping IBC."
	kill -SIGTERM "${pid[@]}"
	wait "${pid[@]}"
	echo ".> Done... $?"
}

# run.sh start_xvfb: only its environment, for IBC.
DISPLAY=:1
export DISPLAY
# run.sh start_vnc reads the VNC password the same way; the stand-in serves no VNC.
file_env 'VNC_SERVER_PASSWORD'
if [ -n "$VNC_SERVER_PASSWORD" ]; then
	echo ".> Starting VNC server (stand-in: none)"
	unset_env 'VNC_SERVER_PASSWORD'
else
	echo ".> VNC server disabled"
fi

set_ports
apply_settings
echo ".> Starting Port Forwarding."
echo ".> Starting socat"
"${SCRIPT_PATH}/run_socat.sh" &

echo ".> Starting IBC in ${TRADING_MODE} mode, with params:"
echo ".>		tws-settings-path: ${TWS_SETTINGS_PATH:-$TWS_PATH}"
echo ".>		on2fatimeout: ${TWOFA_TIMEOUT_ACTION}"
"${IBC_PATH}/scripts/ibcstart.sh" "${TWS_MAJOR_VRSN}" -g \
	"--tws-path=${TWS_PATH}" \
	"--ibc-path=${IBC_PATH}" "--ibc-ini=${IBC_INI}" \
	"--on2fatimeout=${TWOFA_TIMEOUT_ACTION}" \
	"--tws-settings-path=${TWS_SETTINGS_PATH:-}" &
_p="$!"
pid+=("$_p")
export pid
echo "$_p" >"/tmp/pid_${TRADING_MODE}"

trap stop_ibc SIGINT SIGTERM
wait "${pid[@]}"
exit $?
