"""The lab: a local Debian 13 "VM" (a systemd container) and a gateway stand-in, for real tests without a cloud."""
