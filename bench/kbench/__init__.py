"""kea's benchmark harness (kea vs uv vs pip); run it through ``bench/run``.

Modules: ``sets`` (requirement sets, pinning, wheel fetching), ``index`` (the PEP 503 static
index with PEP 658 metadata), ``servers`` (nginx, the delaying auth check, the simpleindex
router), ``tools`` (each tool's command and environment per scenario), ``measure`` (timing, peak
RSS, medians and pair-by-pair ratios), ``report`` (the results file and chart), ``main`` (the run).
"""

from __future__ import annotations

from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent
ROOT = BENCH.parent
WORK = BENCH / "work"
SETS_DIR = BENCH / "sets"
RESULTS = BENCH / "results"
