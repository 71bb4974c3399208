"""The event writer: every event table of the synthetic tenant, in a fixed order."""

from __future__ import annotations

from dataclasses import asdict

from airflow_provider_mtp.emulator.synthetic.device_events import DeviceEventTables
from airflow_provider_mtp.emulator.synthetic.email_events import EmailEventTables
from airflow_provider_mtp.emulator.synthetic.event_sql import hash_columns
from airflow_provider_mtp.emulator.synthetic.identity_events import IdentityEventTables
from airflow_provider_mtp.emulator.synthetic.snapshot_tables import SnapshotTables
from airflow_provider_mtp.emulator.tenant_data.activity import (
    CLOUD_APP_PROFILES,
    DEVICE_EVENT_PROFILES,
    DIRECTORY_PROFILES,
    EMAIL_PROFILES,
    FILE_PROFILES,
    IDENTITY_LOGON_PROFILES,
    IMAGE_LOAD_PROFILES,
    LOGON_PROFILES,
    NETWORK_DESTINATIONS,
    PROCESS_PROFILES,
    REGISTRY_PROFILES,
)


class EventWriter(SnapshotTables, DeviceEventTables, IdentityEventTables, EmailEventTables):
    """Writes the event tables with set-based SQL; every choice is a hash of the row index.

    Small Python-side tables (``_mtp_dev``, ``_mtp_usr`` and one per profile list) are joined in;
    profile tables are expanded to one row per weight unit (``slot``) so a hash picks by weight.
    """

    def write_all(self, events_per_day: int) -> None:
        try:
            self.load_lookups()
            self.device_info()
            self.device_network_info()
            self.identity_info()
            writers = {
                "DeviceProcessEvents": self.process_events,
                "DeviceNetworkEvents": self.network_events,
                "DeviceFileEvents": self.file_events,
                "DeviceLogonEvents": self.logon_events,
                "DeviceEvents": self.device_events,
                "DeviceRegistryEvents": self.registry_events,
                "DeviceImageLoadEvents": self.image_load_events,
                "IdentityLogonEvents": self.identity_logon_events,
                "IdentityDirectoryEvents": self.directory_events,
                "CloudAppEvents": self.cloud_app_events,
            }
            for table, write in writers.items():
                per_day = self.rows_per_day(table, events_per_day)
                if per_day:
                    write(per_day)
            self.email_tables(events_per_day)
        finally:
            for table in reversed(self.temp_tables):
                self.con.execute(f"DROP TABLE IF EXISTS {table}")

    def load_lookups(self) -> None:
        index_of = {user.account_name: index for index, user in enumerate(self.users)}
        self.temp_table(
            "dev",
            [
                {
                    "idx": index,
                    **{
                        key: value
                        for key, value in asdict(device).items()
                        if key not in ("first_seen", "os_build")
                    },
                    "os_build": device.os_build or 0,
                    "owner_idx": index_of[device.primary_user],
                }
                for index, device in enumerate(self.devices)
            ],
        )
        self.temp_table("usr", [{"idx": index, **asdict(user)} for index, user in enumerate(self.users)])
        self.profile_table("proc", [{**p, **hash_columns(p["file"])} for p in PROCESS_PROFILES])
        self.profile_table("dest", NETWORK_DESTINATIONS)
        self.profile_table("file", FILE_PROFILES)
        self.profile_table("mail", EMAIL_PROFILES)
        self.profile_table("logon", LOGON_PROFILES)
        self.profile_table("devent", DEVICE_EVENT_PROFILES)
        self.profile_table("reg", REGISTRY_PROFILES)
        self.profile_table("img", [{**p, **hash_columns(p["file"])} for p in IMAGE_LOAD_PROFILES])
        self.profile_table("idlogon", IDENTITY_LOGON_PROFILES)
        self.profile_table("dir", DIRECTORY_PROFILES)
        self.profile_table("cloud", CLOUD_APP_PROFILES)
