"""The event writer: every event table of the synthetic tenant, in a fixed order."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from airflow_provider_mtp.emulator.synthetic.device_events import DeviceEventTables
from airflow_provider_mtp.emulator.synthetic.email_events import EmailEventTables
from airflow_provider_mtp.emulator.synthetic.identity_events import IdentityEventTables
from airflow_provider_mtp.emulator.synthetic.images import image_rows, initiating_fields
from airflow_provider_mtp.emulator.synthetic.process_events import ProcessEventTable
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
    REGISTRY_PROFILES,
)


def _with_initiating(profiles: tuple[dict[str, Any], ...], **extra: Any) -> list[dict[str, Any]]:
    """Profile rows with the ``ip_*`` fields of their initiating process (``proc``)."""
    return [{**profile, **extra, **initiating_fields(profile["proc"])} for profile in profiles]


def _origin_ip(url: str) -> str:
    """The address a download URL's host resolves to (the network destinations' addresses)."""
    host = url.split("://", 1)[-1].split("/", 1)[0]
    return next((d["ip"] for d in NETWORK_DESTINATIONS if d["url"] == host), "")


class EventWriter(
    SnapshotTables, ProcessEventTable, DeviceEventTables, IdentityEventTables, EmailEventTables
):
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
                    # The Device tables name a domain-joined device by its lower-case FQDN.
                    "device_name": device.dns_name,
                    "owner_idx": index_of[device.primary_user],
                }
                for index, device in enumerate(self.devices)
            ],
        )
        self.temp_table("usr", [{"idx": index, **asdict(user)} for index, user in enumerate(self.users)])
        self.temp_table("image", image_rows())
        self.profile_table("dest", _with_initiating(NETWORK_DESTINATIONS))
        self.profile_table(
            "file", [{**p, "origin_ip": _origin_ip(p["origin"])} for p in _with_initiating(FILE_PROFILES)]
        )
        self.profile_table("mail", EMAIL_PROFILES)
        self.profile_table("logon", _with_initiating(LOGON_PROFILES))
        self.profile_table(
            "devent",
            [{**p, "origin_ip": _origin_ip(p["origin"])} for p in _with_initiating(DEVICE_EVENT_PROFILES)],
        )
        self.profile_table("reg", _with_initiating(REGISTRY_PROFILES))
        self.profile_table("img", _with_initiating(IMAGE_LOAD_PROFILES))
        self.profile_table("idlogon", IDENTITY_LOGON_PROFILES)
        self.profile_table("dir", DIRECTORY_PROFILES)
        self.profile_table("cloud", CLOUD_APP_PROFILES)
