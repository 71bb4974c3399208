"""The golden KQL battery (kql-subset.md section 4): fixture tenant, queries, committed snapshot.

Import these from any test that must give the battery's answers: ``fixture`` builds the data,
``battery`` holds the queries, ``snapshot`` compares an answer with the committed one.
"""

from __future__ import annotations
