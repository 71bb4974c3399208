"""DAGs that tests/reliability/test_secret_scan.py runs with ``dag.test()`` and scans for secrets.

``secret_scan`` touches every credential kind and both back ends, succeeds and fails:

* ``found``: a deferrable :class:`IncidentSensor` (client secret, Graph; its trigger runs the
  async hook inline) over the tenant's month;
* ``hunt``: a hunt with a templated query and a form-style parameter (certificate with an
  encrypted key and its password, Graph);
* ``update``: status, tags and a comment on the first incident found (user and password, legacy);
* ``forbidden``: the same update by a read-only app, refused with 403;
* ``bad_query``: a hunt with a KQL syntax error, refused with 400;
* ``check``: the connection form's Test button (``test_connection``), its text to XCom.

``secret_scan_leak`` leaks on purpose: it puts its connection's client secret and a fresh token
in XCom and on stdout, which the scan must catch.

The connections are environment variables the test sets: ``mtp_scan_secret``,
``mtp_scan_cert``, ``mtp_scan_user``, ``mtp_scan_readonly`` and ``mtp_scan_leaky``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from airflow.sdk import DAG, task

from airflow_provider_mtp.operators.hunting import RunHuntingQueryOperator
from airflow_provider_mtp.operators.incidents import UpdateIncidentOperator
from airflow_provider_mtp.sensors.incidents import IncidentSensor

#: The emulator's tenant ends here (tests/conftest.py TEST_NOW); the month before holds its data.
MONTH = {"start": "2026-10-21T12:00:00Z", "end": "2026-11-20T12:00:00Z"}
FIRST_INCIDENT = "{{ ti.xcom_pull(task_ids='found')[0]['id'] }}"

with DAG(
    dag_id="secret_scan",
    schedule=None,
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    default_args={"retries": 0},
) as dag:
    found = IncidentSensor(
        task_id="found",
        mtp_conn_id="mtp_scan_secret",
        lag=0,
        deferrable=True,
        poke_interval=1,
        timeout=120,
        max_incidents=50,
        **MONTH,
    )
    hunt = RunHuntingQueryOperator(
        task_id="hunt",
        mtp_conn_id="mtp_scan_cert",
        query=(
            "DeviceProcessEvents\n"
            "| where Timestamp >= WindowStart and Timestamp < WindowEnd and DeviceName != device\n"
            "| take {{ params.rows }}\n"
            "| project Timestamp, DeviceName, FileName"
        ),
        query_parameters={"device": "{{ params.device }}"},
        params={"rows": 3, "device": "nobody"},
        **MONTH,
    )
    update = UpdateIncidentOperator(
        task_id="update",
        mtp_conn_id="mtp_scan_user",
        incident_id=FIRST_INCIDENT,
        status="inProgress",
        tags=["scanned"],
        add_tags=True,
        comment="Scanned by {{ dag.dag_id }}",
    )
    forbidden = UpdateIncidentOperator(
        task_id="forbidden",
        mtp_conn_id="mtp_scan_readonly",
        incident_id=FIRST_INCIDENT,
        status="resolved",
    )
    bad_query = RunHuntingQueryOperator(
        task_id="bad_query", mtp_conn_id="mtp_scan_secret", query="DeviceProcessEvents | wher x ==", **MONTH
    )

    @task
    def check() -> dict[str, Any]:
        from airflow_provider_mtp.hooks.mtp import MTPHook

        hook = MTPHook(mtp_conn_id="mtp_scan_secret")
        try:
            ok, message = hook.test_connection()
        finally:
            hook.session.close()
        return {"ok": ok, "message": message}

    found >> [update, forbidden]
    check()


with DAG(
    dag_id="secret_scan_leak",
    schedule=None,
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    default_args={"retries": 0},
) as leak_dag:

    @task
    def leak() -> dict[str, str]:
        from airflow.sdk import BaseHook

        from airflow_provider_mtp.hooks.mtp import MTPHook

        hook = MTPHook(mtp_conn_id="mtp_scan_leaky")
        try:
            token = hook.tokens.token()
        finally:
            hook.session.close()
        secret = str(BaseHook.get_connection("mtp_scan_leaky").password)
        # Around Airflow's masking: print() is not a log call, and XCom values are stored as given.
        print("leaked:", token, secret, flush=True)
        return {"secret": secret, "token": token}

    leak()
