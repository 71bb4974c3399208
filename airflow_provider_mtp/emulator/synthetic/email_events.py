"""The e-mail hunting tables: EmailEvents, EmailAttachmentInfo, EmailUrlInfo and UrlClickEvents."""

from __future__ import annotations

from datetime import timedelta

from airflow_provider_mtp.emulator.synthetic.event_sql import EventSQL
from airflow_provider_mtp.emulator.tenant_data.activity import ATTACHMENTS_CLEAN, ATTACHMENTS_MALWARE
from airflow_provider_mtp.emulator.tenant_data.estate import DOMAIN, OFFICE_EGRESS_IP


class EmailEventTables(EventSQL):
    """EmailEvents, EmailAttachmentInfo, EmailUrlInfo and UrlClickEvents: attachments and URLs belong to mails."""

    def email_tables(self, events_per_day: int) -> None:
        """EmailEvents, then the attachment, URL and click tables that point at its messages."""
        self.email_base(events_per_day)
        self.insert_email_events()
        attachments = self.rows_per_day("EmailAttachmentInfo", events_per_day)
        urls = self.rows_per_day("EmailUrlInfo", events_per_day)
        clicks = self.rows_per_day("UrlClickEvents", events_per_day)
        if attachments:
            self.attachment_info(attachments, events_per_day)
        if urls:
            self.url_info(urls, events_per_day)
            if clicks:
                self.url_clicks(clicks, urls)
        # Counts follow the rows actually generated, so joins and the counters agree.
        for column, table in (("AttachmentCount", "EmailAttachmentInfo"), ("UrlCount", "EmailUrlInfo")):
            self.con.execute(
                f"UPDATE store.EmailEvents SET {column} = c.n "
                f"FROM (SELECT NetworkMessageId AS id, count(*) AS n FROM store.{table} GROUP BY ALL) c "
                f"WHERE EmailEvents.NetworkMessageId = c.id"
            )

    def email_base(self, per_day: int) -> None:
        """``_mtp_mail_rows``: one row per message with the fields the other email tables reuse."""
        self.scope = "EmailEvents"
        subject = self.fill("p.subject", user="u.display_name", host="''")
        inbound = "p.kind = 'inbound'"
        outbound = "p.kind = 'outbound'"
        self.con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE _mtp_mail_rows AS
            SELECT b.i, b._ts,
                {self.guid("nmid")} AS nmid,
                CASE WHEN {inbound} THEN p.sender ELSE u.upn END AS sender,
                CASE WHEN {inbound} THEN p.sender_name ELSE u.display_name END AS sender_name,
                CASE WHEN {inbound} THEN NULL ELSE u.object_id END AS sender_oid,
                CASE WHEN {inbound} THEN u.upn WHEN {outbound} THEN p.sender ELSE r.upn END AS recipient,
                CASE WHEN NOT {inbound} AND NOT {outbound} AND {self.rand("cc", 10)} < 3 AND c.upn <> r.upn THEN c.upn END AS cc,
                CASE WHEN {outbound} THEN NULL WHEN {inbound} THEN u.object_id ELSE r.object_id END AS recipient_oid,
                CASE WHEN {inbound} THEN 'Inbound' WHEN {outbound} THEN 'Outbound' ELSE 'Intra-org' END AS direction,
                {subject} AS subject,
                {self.fill("p.url", host="''")} AS url,
                p.pidx, p.ip, p.threats, p.action, p.location, p.auth, p.methods, p.bcl
            FROM {self.base(per_day * self.days, per_day)} {self.user_join(people_only=True)} {self.user_join("r", "rcpt", people_only=True)} {self.user_join("c", "ccu", people_only=True)} {self.profile_join("mail")}
            """
        )
        self.temp_tables.append("_mtp_mail_rows")

    def insert_email_events(self) -> None:
        self.scope = "EmailEvents"
        policy = "CASE WHEN b.threats LIKE '%Malware%' THEN 'Antimalware' WHEN b.threats LIKE '%Phish%' THEN 'Antiphish' WHEN b.threats = 'Spam' THEN 'Antispam' END"
        acted = "b.action IN ('Junked', 'Blocked')"
        columns = {
            "ThreatNames": "CASE WHEN b.threats LIKE '%Malware%' THEN 'Trojan:Win32/Wacatac.B!ml' END",
            "EmailAction": "CASE b.action WHEN 'Junked' THEN 'Move message to junk mail folder' WHEN 'Blocked' THEN 'Send message to quarantine' END",
            "EmailActionPolicy": f"CASE WHEN {acted} THEN {policy} END",
            "EmailActionPolicyGuid": f"CASE WHEN {acted} THEN md5('{self.seed}/policy/' || {policy})::UUID::VARCHAR END",
            "Connectors": "CASE WHEN b.direction = 'Outbound' THEN 'Tailspin Toys TLS' END",
            "To": "json_array(b.recipient)::VARCHAR",
            "Cc": "CASE WHEN b.cc IS NOT NULL THEN json_array(b.cc)::VARCHAR END",
            "IsFirstContact": "CASE WHEN b.threats <> '' THEN 1 ELSE 0 END",
            # A mail-flow rule tags external mail; github.com is on the tenant allow list, a
            # partner on users' safe-sender lists; team notes go to a distribution list.
            "ExchangeTransportRule": "CASE WHEN b.direction = 'Inbound' THEN 'Tag external senders' END",
            "OrgLevelAction": "CASE WHEN b.sender LIKE '%@github.com' THEN 'Allow' END",
            "OrgLevelPolicy": "CASE WHEN b.sender LIKE '%@github.com' THEN 'Tenant Allow Block List' END",
            "UserLevelAction": "CASE WHEN b.direction = 'Inbound' AND b.sender LIKE '%@tailspintoys.example' THEN 'Allow' END",
            "UserLevelPolicy": "CASE WHEN b.direction = 'Inbound' AND b.sender LIKE '%@tailspintoys.example' THEN 'User Safe Senders List' END",
            "DistributionList": f"CASE WHEN b.direction = 'Intra-org' THEN 'team-sync@{DOMAIN}' END",
            "Timestamp": "b._ts",
            "NetworkMessageId": "b.nmid",
            "InternetMessageId": "'<' || replace(b.nmid, '-', '') || '@' || split_part(b.sender, '@', 2) || '>'",
            "SenderMailFromAddress": "b.sender",
            "SenderFromAddress": "b.sender",
            "SenderDisplayName": "b.sender_name",
            "SenderObjectId": "b.sender_oid",
            "SenderMailFromDomain": "split_part(b.sender, '@', 2)",
            "SenderFromDomain": "split_part(b.sender, '@', 2)",
            "SenderIPv4": "NULLIF(b.ip, '')",
            "RecipientEmailAddress": "b.recipient",
            "RecipientObjectId": "b.recipient_oid",
            "Subject": "b.subject",
            "EmailClusterId": f"{self.rand('cluster', 10**9, 'b.pidx')}",
            "EmailDirection": "b.direction",
            "DeliveryAction": "b.action",
            "DeliveryLocation": "CASE WHEN b.direction = 'Outbound' THEN 'On-premises/external' ELSE b.location END",
            "ThreatTypes": "b.threats",
            "DetectionMethods": "NULLIF(b.methods, '')",
            "ConfidenceLevel": "CASE WHEN b.threats LIKE '%Phish%' THEN '{\"Phish\":\"High\"}' WHEN b.threats = 'Spam' THEN '{\"Spam\":\"Normal\"}' END",
            "BulkComplaintLevel": "b.bcl",
            "AuthenticationDetails": "b.auth",
            "AttachmentCount": "0",
            "UrlCount": "0",
            "EmailLanguage": "'en'",
            "ReportId": "b.nmid || '-' || coalesce(b.recipient_oid, '0')",
            "LatestDeliveryAction": "CASE WHEN b.threats LIKE '%Phish%' AND b.action = 'Delivered' THEN 'Removed after delivery' ELSE b.action END",
            "LatestDeliveryLocation": "CASE WHEN b.threats LIKE '%Phish%' AND b.action = 'Delivered' THEN 'Quarantine' ELSE b.location END",
            "RecipientDomain": "split_part(b.recipient, '@', 2)",
            "EmailSize": f"2000 + {self.rand('size', 400_000)}",
        }
        self.insert("EmailEvents", columns, "FROM _mtp_mail_rows b")

    def email_pick(self, alias: str, per_day: int, mail_per_day: int, salt: str) -> str:
        """Join the message this row belongs to, chosen within the row's own day."""
        day = f"(b.i // {per_day})"
        return f"JOIN _mtp_mail_rows {alias} ON {alias}.i = {day} * {mail_per_day} + {self.rand(salt, mail_per_day)}"

    def attachment_info(self, per_day: int, mail_per_day: int) -> None:
        self.scope = "EmailAttachmentInfo"
        malicious = "e.threats LIKE '%Malware%'"
        clean = self.fill(self.pick([name for name, _ in ATTACHMENTS_CLEAN], "att"), user="''", host="''")
        bad = self.fill(self.pick([name for name, _ in ATTACHMENTS_MALWARE], "att"), user="''", host="''")
        name = f"CASE WHEN {malicious} THEN {bad} ELSE {clean} END"
        columns = {
            "Timestamp": "e._ts",
            "NetworkMessageId": "e.nmid",
            "SenderFromAddress": "e.sender",
            "SenderDisplayName": "e.sender_name",
            "SenderObjectId": "e.sender_oid",
            "RecipientEmailAddress": "e.recipient",
            "RecipientObjectId": "e.recipient_oid",
            "FileName": name,
            "FileType": f"split_part({name}, '.', -1)",
            "SHA256": f"sha256(lower({name}))",
            "FileSize": f"1000 + {self.rand('size', 5_000_000)}",
            "ThreatTypes": f"CASE WHEN {malicious} THEN 'Malware' ELSE '' END",
            "ThreatNames": f"CASE WHEN {malicious} THEN 'Trojan:Win32/Wacatac.B!ml' ELSE '' END",
            "DetectionMethods": f'CASE WHEN {malicious} THEN \'{{"Malware":["File detonation"]}}\' END',
            "ReportId": f"e.nmid || '-' || {self.rand('rid', 10**6)}",
        }
        source = f"FROM (SELECT range AS i FROM range({per_day * self.days})) b {self.email_pick('e', per_day, mail_per_day, 'att-msg')}"
        self.insert("EmailAttachmentInfo", columns, source, order="e._ts, b.i")

    def url_info(self, per_day: int, mail_per_day: int) -> None:
        """EmailUrlInfo rows, kept as ``_mtp_url_rows`` so clicks can point at them."""
        self.scope = "EmailUrlInfo"
        domain = "split_part(split_part(e.url, '://', 2), '/', 1)"
        self.con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE _mtp_url_rows AS
            SELECT b.i, e._ts, e.nmid, e.url, {domain} AS domain, e.recipient, e.threats, e.methods,
                {self.pick(["Body", "Body", "Body", "Attachment", "Header"], "loc")} AS location
            FROM (SELECT range AS i FROM range({per_day * self.days})) b {self.email_pick("e", per_day, mail_per_day, "url-msg")}
            """
        )
        self.temp_tables.append("_mtp_url_rows")
        columns = {
            "Timestamp": "b._ts",
            "NetworkMessageId": "b.nmid",
            "Url": "b.url",
            "UrlDomain": "b.domain",
            "UrlLocation": "b.location",
            "ReportId": "b.nmid || '-u' || b.i",
        }
        self.insert("EmailUrlInfo", columns, "FROM _mtp_url_rows b")

    def url_clicks(self, per_day: int, url_per_day: int) -> None:
        self.scope = "UrlClickEvents"
        phish = "x.threats LIKE '%Phish%'"
        blocked = f"{phish} AND {self.rand('blk', 10)} < 7"
        # Clicks come minutes after delivery; clamped so nothing lands at or after `now`.
        last = (self.now - timedelta(microseconds=1)).isoformat()
        clicked = f"least(x._ts + to_microseconds({self.rand('delay', 1_800_000_000)}), TIMESTAMPTZ '{last}')"
        columns = {
            "Timestamp": clicked,
            "Url": "x.url",
            "ActionType": f"CASE WHEN {blocked} THEN 'ClickBlocked' ELSE 'ClickAllowed' END",
            "AccountUpn": "x.recipient",
            "Workload": "'Email'",
            "NetworkMessageId": "x.nmid",
            "ThreatTypes": "x.threats",
            "IPAddress": f"'{OFFICE_EGRESS_IP}'",
            "IsClickedThrough": f"NOT ({blocked}) AND {phish}",
            "DetectionMethods": "NULLIF(x.methods, '')",
            # A click that goes straight to the page: the chain is the URL itself.
            "UrlChain": "json_array(x.url)::VARCHAR",
            "AppVersion": "'16.0.18129.20158'",
            "ReportId": f"{self.guid('click')}",
            "AppName": "'Outlook'",
            "TimeGenerated": clicked,
        }
        url_pick = f"(b.i // {per_day}) * {url_per_day} + {self.rand('click-url', url_per_day)}"
        source = f"FROM (SELECT range AS i FROM range({per_day * self.days})) b JOIN _mtp_url_rows x ON x.i = {url_pick}"
        self.insert("UrlClickEvents", columns, source, order=f"{clicked}, b.i")
