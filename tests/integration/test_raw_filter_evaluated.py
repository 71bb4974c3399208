"""Valid raw ``odata_filter`` values, evaluated: the composition means "the other clauses AND the raw one".

The composed Graph ``$filter`` is evaluated with the emulator's OData parser (moved here from
``tests/unit/test_raw_filter.py`` so the unit tier runs without the emulator): it matches a row
exactly when the other clauses and the raw one do.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_provider_mtp.api.graph import incident_list_params
from airflow_provider_mtp.emulator.odata import parse_filter
from airflow_provider_mtp.emulator.routes.graph import FILTER_FIELDS


def odata_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


STATUSES = ["active", "resolved", "inProgress", "redirected"]
names = st.text(alphabet=st.sampled_from(list("ab()' ")), max_size=6)


def comparison() -> st.SearchStrategy[str]:
    return st.one_of(
        st.builds(
            lambda op, value: f"assignedTo {op} {odata_string(value)}", st.sampled_from(["eq", "ne"]), names
        ),
        st.builds(
            lambda op, value: f"status {op} '{value}'",
            st.sampled_from(["eq", "ne"]),
            st.sampled_from(STATUSES),
        ),
    )


expressions = st.recursive(
    comparison(),
    lambda inner: st.one_of(
        st.builds(lambda a, b: f"{a} or {b}", inner, inner),
        st.builds(lambda a, b: f"{a} and {b}", inner, inner),
        st.builds(lambda a: f"not ({a})", inner),
        st.builds(lambda a: f"({a})", inner),
    ),
    max_leaves=6,
)
rows = st.lists(
    st.fixed_dictionaries({"assignedTo": names, "status": st.sampled_from(STATUSES)}), min_size=1, max_size=8
)


@settings(max_examples=200, deadline=None)
@given(raw=expressions, status=st.sampled_from(STATUSES), owner=names, incidents=rows)
def test_the_composed_filter_matches_exactly_the_others_and_the_raw_clause(
    raw: str, status: str, owner: str, incidents: list[dict[str, Any]]
) -> None:
    composed = parse_filter(
        incident_list_params(status=[status], assigned_to=owner, odata_filter=raw)["$filter"],
        fields=FILTER_FIELDS,
    )
    others = parse_filter(
        incident_list_params(status=[status], assigned_to=owner)["$filter"], fields=FILTER_FIELDS
    )
    alone = parse_filter(raw, fields=FILTER_FIELDS)
    for row in incidents:
        assert composed(row) == (others(row) and alone(row))
