"""ibgw-ops: deploy and operate Interactive Brokers Gateway on a Google Cloud VM with Ansible."""

__version__ = "0.1.0"
