"""Executable images and file identities: one set of hashes, size and version info per file.

A file's identity key is its full path as a template, lower-cased, with ``{user}`` left in place
(the same tool downloaded by two users is the same binary) and ``{n}`` filled. Python
(:func:`file_hashes`) and SQL (:meth:`ImageSQL.key_hashes`) derive SHA1, SHA256, MD5 and the size
from that key the same way, so a file has the same values in every table and alert.
"""

from __future__ import annotations

import hashlib
from functools import cache
from typing import Any

from airflow_provider_mtp.emulator.tenant_data.images import (
    BOOT_COMMANDS,
    BOOT_PARENTS,
    BOOT_RANKS,
    IMAGES,
    SYSTEM_PROCESSES,
)


def file_key(path: str) -> str:
    """The identity key of a file from its path template (folder and name)."""
    return path.lower()


def file_hashes(key: str) -> tuple[str, str, str]:
    """(sha1, sha256, md5) of a file, from :func:`file_key`: the SQL side derives them the same way."""
    data = file_key(key).encode("utf-8")
    return hashlib.sha1(data).hexdigest(), hashlib.sha256(data).hexdigest(), hashlib.md5(data).hexdigest()


def file_size(key: str, base: int = 50_000, spread: int = 2_000_000) -> int:
    """A stable size for a file (the SQL side: :meth:`ImageSQL.key_size`)."""
    return base + int(file_hashes(key)[1][:6], 16) % spread


def split_path(path: str) -> tuple[str, str]:
    """(folder with its trailing backslash, file name)."""
    folder, _, name = path.rpartition("\\")
    return (folder + "\\" if folder else ""), name


@cache
def image_paths() -> dict[str, str]:
    """File name (any case) -> the path of its usual image; the first listed wins."""
    paths: dict[str, str] = {}
    for path, *_ in IMAGES:
        paths.setdefault(split_path(path)[1].lower(), path)
    return paths


def image_path(name: str) -> str:
    """The usual path of an image by file name (``System`` has none).

    :raises KeyError: a name no image has; every process a table names must be in the catalogue.
    """
    if name == "System":
        return ""
    return image_paths()[name.lower()]


def usual_parent(name: str) -> str:
    """The process that usually starts ``name``: its boot parent, services.exe, or the shell."""
    if name == "System":
        return ""
    if name in BOOT_PARENTS:
        return BOOT_PARENTS[name]
    return "services.exe" if name in SYSTEM_PROCESSES else "explorer.exe"


def initiating_fields(name: str) -> dict[str, Any]:
    """Profile columns for an initiating process named ``name`` (joined as ``ip_*`` in SQL)."""
    path = image_path(name)
    parent = usual_parent(name)
    return {
        "ip_key": file_key(path) if path else "system",
        "ip_boot": name in BOOT_RANKS or name == "System",
        "ip_rank": BOOT_RANKS.get(name, 5 if name == "System" else 0),
        "ip_system": name in SYSTEM_PROCESSES,
        "ip_cmd": BOOT_COMMANDS.get(name, f'"{path}"' if path else ""),
        "ip_parent": parent,
        "ip_parent_rank": BOOT_RANKS.get(parent, 5),
    }


def image_rows() -> list[dict[str, Any]]:
    """One row per image for the ``_mtp_image`` lookup table, keyed by :func:`file_key`."""
    rows = []
    for path, company, product, version, description, signer, status in IMAGES:
        sha1, sha256, md5 = file_hashes(path)
        name = split_path(path)[1]
        rows.append(
            {
                "key": file_key(path),
                "name": name,
                "path": path,
                "sha1": sha1,
                "sha256": sha256,
                "md5": md5,
                "size": file_size(path),
                "company": company,
                "product": product,
                "version": version,
                "description": description,
                "original": name if company else "",
                "internal": name.rsplit(".", 1)[0] if company else "",
                "signer": signer,
                "status": status,
                "rank": BOOT_RANKS.get(name, 0),
                "boot_parent": BOOT_PARENTS.get(name, ""),
            }
        )
    # "System" (the kernel) has no file: no path, no hashes, as in the service's rows.
    rows.append({key: "" for key in rows[0]} | {"key": "system", "name": "System", "size": 0, "rank": 5})
    return rows
