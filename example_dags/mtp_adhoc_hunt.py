"""Ad-hoc hunt from the Airflow UI: pick a saved query, a lookback and a device or account, get a CSV file.

What it does
    Trigger it from the UI ("Trigger DAG" opens a form built from ``params``): choose one of the
    saved queries, how many hours back to look, and a device name and/or an account name (blank
    means any). ``hunt`` runs the query and writes the rows to a CSV file; ``summarize`` logs the
    row count, the columns and the file's path.

Why it is written this way
    * Values typed into the form are untrusted. They reach KQL only as bound, typed query
      parameters (``query_parameters`` + ``parameter_types``): the operator writes them as ``let``
      literals before the query, so a value such as ``x" | union * | take 1 //`` is matched as
      plain text and can never change the query. The saved query itself is chosen from a fixed
      list (``Param(enum=...)``); nothing from the form is pasted into KQL text.
    * The lookback ends at the run's ``run_after`` (bound as the datetime ``until``), so retrying
      or clearing a run asks exactly the same question.
    * ``pool="mtp_hunting"`` shares the tenant's hunting quota (45 hunts a minute per tenant) with
      the scheduled DAGs.

How to run it
    Needs: the connection ``mtp_default`` (type ``mtp``) and the pool ``mtp_hunting``
    (``airflow pools set mtp_hunting 3 "Defender XDR hunting quota"``). Files go under the Airflow
    Variable ``mtp_output_root``, else the environment variable ``MTP_OUTPUT_ROOT``, else
    ``file:///tmp/mtp-output``. From the command line:
    ``airflow dags test mtp_adhoc_hunt -c '{"query": "device_process_events", "device_name": "ws-hr-04"}'``.
"""

# DAG wiring passes XComArgs where TaskFlow functions declare the values they get at run time.
# mypy: disable-error-code="arg-type"
from __future__ import annotations

import logging
import os
from datetime import timedelta
from typing import Any

from airflow.sdk import DAG, Param, Variable, task

from airflow_provider_mtp.operators.hunting import RunHuntingQueryOperator

log = logging.getLogger(__name__)

HUNTING_POOL = "mtp_hunting"
DEFAULT_OUTPUT_ROOT = "file:///tmp/mtp-output"

# Every saved query may use: device, account (strings; "" means any), lookback_hours (long) and
# until (datetime). Unused bindings are harmless.
_DEVICE = '(isempty(device) or DeviceName =~ device or DeviceName startswith strcat(device, "."))'
_SPAN = "Timestamp >= until - lookback_hours * 1h and Timestamp < until"
SAVED_QUERIES = {
    "device_process_events": f"""
DeviceProcessEvents
| where {_SPAN} and {_DEVICE}
| where isempty(account) or AccountName =~ account
| project Timestamp, DeviceName, AccountName, FileName, ProcessCommandLine, InitiatingProcessFileName, SHA256
| order by Timestamp desc""",
    "device_network_events": f"""
DeviceNetworkEvents
| where {_SPAN} and {_DEVICE}
| where isempty(account) or InitiatingProcessAccountName =~ account
| project Timestamp, DeviceName, ActionType, RemoteIP, RemotePort, RemoteUrl, InitiatingProcessFileName
| order by Timestamp desc""",
    "account_logons": f"""
DeviceLogonEvents
| where {_SPAN} and {_DEVICE}
| where isempty(account) or AccountName =~ account
| project Timestamp, DeviceName, AccountDomain, AccountName, ActionType, LogonType, RemoteIP
| order by Timestamp desc""",
}


def output_root() -> str:
    """The results' root URI, read when a task runs (never when the DAG is parsed)."""
    default = os.environ.get("MTP_OUTPUT_ROOT", DEFAULT_OUTPUT_ROOT)
    return str(Variable.get("mtp_output_root", default=default)).rstrip("/")


with DAG(
    dag_id="mtp_adhoc_hunt",
    description="Run a saved Defender XDR hunting query from the trigger form; rows to a CSV file",
    schedule=None,
    catchup=False,
    params={
        "query": Param(
            "device_process_events",
            enum=sorted(SAVED_QUERIES),
            title="Saved query",
            description="Which saved hunting query to run.",
        ),
        "lookback_hours": Param(
            24, type="integer", minimum=1, maximum=720, title="Lookback (hours)", description="Up to 30 days."
        ),
        # Nullable: the UI form makes a non-nullable param required and sends a blank field as null.
        "device_name": Param(
            None,
            type=["null", "string"],
            maxLength=255,
            title="Device name",
            description="Blank: every device.",
        ),
        "account_name": Param(
            None,
            type=["null", "string"],
            maxLength=255,
            title="Account name",
            description="Blank: every account.",
        ),
    },
    user_defined_macros={"saved_queries": SAVED_QUERIES, "mtp_output_root": output_root},
    tags=["mtp", "defender", "example"],
) as dag:
    hunt = RunHuntingQueryOperator(
        task_id="hunt",
        # Chosen from the fixed list by the enum-checked key; the form's text never enters the query.
        query="{{ saved_queries[params.query] }}",
        query_parameters={
            "device": "{{ params.device_name or '' }}",
            "account": "{{ params.account_name or '' }}",
            "lookback_hours": "{{ params.lookback_hours }}",
            "until": "{{ dag_run.run_after.isoformat() }}",
        },
        parameter_types={"lookback_hours": "long", "until": "datetime"},
        output_path="{{ mtp_output_root() }}/adhoc/{{ params.query }}-{{ dag_run.run_after | ts_nodash }}.csv",
        pool=HUNTING_POOL,
        deferrable=True,
        execution_timeout=timedelta(minutes=15),
    )

    @task
    def summarize(manifest: dict[str, Any]) -> dict[str, Any]:
        """Log the result's size, columns and place."""
        columns = [column["name"] for column in manifest["schema"]]
        log.info(
            "%d rows, %d columns (%s) in %s",
            manifest["rows"],
            len(columns),
            ", ".join(columns),
            manifest["path"],
        )
        return {"rows": manifest["rows"], "columns": columns, "path": manifest["path"]}

    summarize(hunt.output)
