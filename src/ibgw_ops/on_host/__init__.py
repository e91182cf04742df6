"""Code that also runs on the gateway VM: standard library only, no import from the rest of ibgw_ops.

The collection's ``plugins/module_utils`` are symlinks to these files (copied into the wheel and the collection
at build), so the controller and the VM's modules run the same code.
"""
