"""``example_dags/mtp_alert_enrichment.py`` in the tests' dags folder, so that ``dag.test()`` can serialise it.

Loaded from the example's own file (not a copy); ``fileloc`` points here, inside the bundle. (Airflow's
safe-mode discovery parses only files that name both "airflow" and "dag".)
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

_EXAMPLE = Path(__file__).resolve().parents[2] / "example_dags" / "mtp_alert_enrichment.py"
_spec = importlib.util.spec_from_file_location("tests_dags_mtp_alert_enrichment", _EXAMPLE)
assert _spec is not None
assert _spec.loader is not None
example = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(example)

dag = example.dag
dag.fileloc = __file__
