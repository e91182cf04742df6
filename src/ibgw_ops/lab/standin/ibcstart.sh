#!/bin/bash
# Rehearsal stand-in for IBC's resources/scripts/ibcstart.sh (IbcAlpha/IBC 3.24.1): its arguments, its checks,
# and its loop around the Java process (here the stand-in's gateway.py): a COLDRESTART<session id> flag file
# means start again at once; an autorestart file one folder below the settings path means start again with
# -Drestart=<folder> (no login), unless a PAUSE<session id> file says "paused"; exit status 1111 % 256 (2FA timed
# out) starts again only with --on2fatimeout=restart; anything else ends the loop. Upstream echoes "sleep 2"
# between two runs without sleeping; so does this.
twofa_to_action=
tws_settings_path=
ibc_ini=
for arg in "$@"; do
	case "$arg" in
	--tws-settings-path=*) tws_settings_path=${arg#*=} ;;
	--ibc-ini=*) ibc_ini=${arg#*=} ;;
	--on2fatimeout=*) twofa_to_action=${arg#*=} ;;
	--tws-path=* | --ibc-path=* | -g | --gateway | [0-9]*) ;;
	*) echo "Invalid parameter '${arg}'" >&2; exit 3 ;;
	esac
done
twofa_to_action_upper=${twofa_to_action^^}
if [[ -n "$twofa_to_action_upper" && "$twofa_to_action_upper" != "RESTART" && "$twofa_to_action_upper" != "EXIT" ]]; then
	echo "2FA timeout action set to ${twofa_to_action} but must be either 'restart' or 'exit' (case-insensitive)" >&2
	exit 3
fi
[[ -n "$tws_settings_path" ]] || tws_settings_path=$TWS_PATH
if [[ ! -d "$tws_settings_path" ]]; then
	echo "TWS settings path: $tws_settings_path does not exist" >&2
	exit 5
fi
if [[ ! -e "$ibc_ini" ]]; then
	echo "IBC configuration file: $ibc_ini  does not exist" >&2
	exit 6
fi
E_2FA_DIALOG_TIMED_OUT=$((1111 % 256))
E_LOGIN_DIALOG_DISPLAY_TIMEOUT=$((1112 % 256))
ibc_session_id=$(mktemp -u XXXXXXXX)

find_auto_restart() {
	echo "Finding autorestart file"
	restart_dir=
	local found
	found=$(find "$tws_settings_path" -mindepth 2 -maxdepth 2 -type f -name autorestart | head -n 1)
	if [[ -n "$found" ]]; then
		restart_dir=$(basename "$(dirname "$found")")
		echo "autorestart file found at $found: authentication will not be required"
	else
		echo "autorestart file not found: full authentication will be required"
	fi
}

find_auto_restart
cd "$tws_settings_path" || exit 5
while :; do
	echo "Starting Gateway (stand-in) with IBC's config $ibc_ini"
	trap 'kill -TERM $PID' TERM INT
	python3 "${SCRIPT_PATH}/standin_gateway.py" "$ibc_ini" "--jts-config-dir=$tws_settings_path" \
		"--session-id=$ibc_session_id" ${restart_dir:+"--restart=$restart_dir"} &
	PID=$!
	wait $PID
	trap - TERM INT
	wait $PID
	exit_code=$(($? % 256))
	echo "IBC returned exit status $exit_code"
	if [[ $exit_code -eq $E_LOGIN_DIALOG_DISPLAY_TIMEOUT ]]; then
		:
	elif [[ -e "$tws_settings_path/COLDRESTART$ibc_session_id" ]]; then
		rm "$tws_settings_path/COLDRESTART$ibc_session_id"
		restart_dir=
		echo "IBC will cold-restart shortly"
	else
		find_auto_restart
		if [[ -n "$restart_dir" ]]; then
			if [[ -e "$tws_settings_path/PAUSE$ibc_session_id" ]]; then
				rm "$tws_settings_path/PAUSE$ibc_session_id"
				echo "IBC is paused"
				break
			fi
		elif [[ $exit_code -ne $E_2FA_DIALOG_TIMED_OUT ]]; then
			break
		elif [[ "$twofa_to_action_upper" != "RESTART" ]]; then
			break
		fi
	fi
	echo "IBC will restart shortly"
	echo "sleep 2"
done
echo "Gateway finished"
exit $exit_code
