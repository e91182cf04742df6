"""Allow ``python -m ibgw_ops``."""

from ibgw_ops.cli import main

raise SystemExit(main())
