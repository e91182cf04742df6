"""GCP provisioning: the network, addresses, firewall rules and VM a gateway host needs.

They are reconciled through the Compute Engine API (``google-cloud-compute``), which only the verbs that talk
to the cloud import.

``settings`` reads and checks ``gcp.yml``; ``desired`` turns it into resources; ``compute`` talks to the API;
``reconcile`` compares and converges one resource; ``graph`` runs independent resources concurrently;
``provision`` ties them into plan, apply and destroy.
"""
