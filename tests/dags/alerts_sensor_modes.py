"""One window, three AlertSensor modes on both back ends: all six must return the same XCom.

Hourly data intervals and the default 5-minute lag: the run at logical date T matches alerts last
updated in [T - 1h - 5m, T - 5m). Only alerts from the ``automatedInvestigation`` detector (the
tests put them there); ``mtp_legacy`` is the same emulator through the legacy API, where alerts
come from the incidents that embed them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import DAG

from airflow_provider_mtp.enums import DetectionSource
from airflow_provider_mtp.sensors.alerts import AlertSensor

COMMON = {
    "detection_source": DetectionSource.AUTOMATED_INVESTIGATION,
    "poke_interval": 1,
    "max_alerts": 50,
    "timeout": 120,
}

with DAG(
    dag_id="alerts_sensor_modes",
    schedule=timedelta(hours=1),
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
) as dag:
    for api, conn_id in (("graph", "mtp_default"), ("legacy", "mtp_legacy")):
        AlertSensor(task_id=f"{api}_poke", mtp_conn_id=conn_id, mode="poke", **COMMON)
        AlertSensor(task_id=f"{api}_reschedule", mtp_conn_id=conn_id, mode="reschedule", **COMMON)
        AlertSensor(task_id=f"{api}_deferrable", mtp_conn_id=conn_id, deferrable=True, **COMMON)
