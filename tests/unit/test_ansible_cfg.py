"""The shipped ansible.cfg: what every verb's SSH and module start rely on (benchmarks.md, "Profiles")."""

from __future__ import annotations

import configparser
import re
import shlex

from ibgw_ops.paths import data_dir

# The docs' cron example starts paper at 08:50 and stops it at 09:30: the second verb must find the first's master.
CRON_PAIR_MINUTES = 40


def shipped() -> configparser.ConfigParser:
    config = configparser.ConfigParser(interpolation=None)
    config.read(data_dir() / "ansible.cfg")
    return config


def ssh_options() -> dict[str, str]:
    words = shlex.split(shipped()["ssh_connection"]["ssh_args"])
    return dict(word.split("=", 1) for word in words[1::2])


def test_an_ssh_master_outlives_the_gap_between_paper_up_and_paper_down():
    options = ssh_options()
    assert options["ControlMaster"] == "auto"
    persist = re.fullmatch(r"(\d+)([smh]?)", options["ControlPersist"])
    assert persist, options["ControlPersist"]
    seconds = int(persist[1]) * {"": 1, "s": 1, "m": 60, "h": 3600}[persist[2]]
    assert seconds >= CRON_PAIR_MINUTES * 60


def test_a_master_whose_vm_went_away_is_dropped_instead_of_hanging_the_next_verb():
    # No longer than the 60 s a master used to outlive its last use: a VM recreated at the same address (the lab's
    # tests do that) must not meet a dead master for longer than before.
    options = ssh_options()
    assert int(options["ServerAliveInterval"]) * int(options["ServerAliveCountMax"]) <= 60


def test_the_control_path_is_ansibles_per_user_one_not_a_per_run_directory():
    config = shipped()
    assert "control_path_dir" not in config["ssh_connection"]
    assert "control_path" not in config["ssh_connection"]


def test_modules_start_without_an_interpreter_discovery_round_trip():
    assert shipped()["defaults"]["interpreter_python"] == "/usr/bin/python3"
