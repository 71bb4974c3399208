"""Hosts and token audiences per Microsoft cloud (defender-api.md section 2).

One setting, the connection's ``cloud``, decides every host and scope: nothing falls back to the
public cloud silently.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Legacy MTP regional hosts; the audience stays the cloud's MTP host.
MTP_REGIONS = ("us", "eu", "uk", "au")


@dataclass(frozen=True, kw_only=True)
class Cloud:
    """One Microsoft cloud.

    :param name: the connection's ``cloud`` value.
    :param login_host: the Entra ID authority host.
    :param graph_root: the Microsoft Graph origin, also its token audience.
    :param mtp_host: the legacy MTP API origin and audience; ``None`` where it is not offered.
    :param portal: the Defender portal origin, for links.
    :param graph_hunting: whether Graph's ``runHuntingQuery`` is documented for this cloud.
    """

    name: str
    login_host: str
    graph_root: str
    mtp_host: str | None
    portal: str
    graph_hunting: bool = True

    @property
    def login_origin(self) -> str:
        return f"https://{self.login_host}"

    @property
    def graph_scope(self) -> str:
        return f"{self.graph_root}/.default"

    @property
    def mtp_scope(self) -> str:
        if self.mtp_host is None:
            raise ValueError(
                f"the legacy MTP API is not offered in the {self.name!r} cloud; set api to 'graph'"
            )
        return f"{self.mtp_host}/.default"

    def mtp_origin(self, region: str | None = None) -> str:
        """The MTP API origin, regional when ``region`` is given (global cloud only)."""
        if self.mtp_host is None:
            raise ValueError(
                f"the legacy MTP API is not offered in the {self.name!r} cloud; set api to 'graph'"
            )
        if not region:
            return self.mtp_host
        if self.name != "global":
            raise ValueError(
                f"regional MTP hosts exist only in the global cloud, not in {self.name!r}; remove region"
            )
        if region not in MTP_REGIONS:
            raise ValueError(
                f"unknown MTP region {region!r}; use one of {', '.join(MTP_REGIONS)} or leave it empty"
            )
        return f"https://{region}.api.security.microsoft.com"


CLOUDS: dict[str, Cloud] = {
    cloud.name: cloud
    for cloud in (
        Cloud(
            name="global",
            login_host="login.microsoftonline.com",
            graph_root="https://graph.microsoft.com",
            mtp_host="https://api.security.microsoft.com",
            portal="https://security.microsoft.com",
        ),
        Cloud(
            name="gcc",
            login_host="login.microsoftonline.com",
            # GCC keeps the worldwide Graph.
            graph_root="https://graph.microsoft.com",
            mtp_host="https://api-gcc.security.microsoft.us",
            portal="https://security.microsoft.com",
        ),
        Cloud(
            name="gcc_high",
            login_host="login.microsoftonline.us",
            graph_root="https://graph.microsoft.us",
            mtp_host="https://api-gov.security.microsoft.us",
            portal="https://security.microsoft.us",
        ),
        Cloud(
            name="dod",
            login_host="login.microsoftonline.us",
            graph_root="https://dod-graph.microsoft.us",
            mtp_host="https://api-gov.security.microsoft.us",
            portal="https://security.apps.mil",
        ),
        Cloud(
            name="china",
            login_host="login.partner.microsoftonline.cn",
            graph_root="https://microsoftgraph.chinacloudapi.cn",
            mtp_host=None,
            portal="https://security.microsoft.com",
            graph_hunting=False,
        ),
    )
}


def get_cloud(name: str | None) -> Cloud:
    """The cloud named by a connection's ``cloud`` extra (empty means ``global``)."""
    key = (name or "global").strip().lower()
    try:
        return CLOUDS[key]
    except KeyError:
        raise ValueError(f"unknown cloud {name!r}; use one of {', '.join(CLOUDS)}") from None
