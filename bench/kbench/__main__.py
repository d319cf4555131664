"""``python -m kbench`` (what ``bench/run`` executes)."""

from kbench.main import main

raise SystemExit(main())
