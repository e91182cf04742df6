"""Code that also runs on the gateway VM: standard library only, no import from the rest of ibgw_ops.

These modules are links to the collection's ``plugins/module_utils`` (copied into the wheel at build), so the
controller and the VM's modules run the same code.
"""
