"""The service's settings: one frozen object, from ``hashguard serve`` options (each also an
environment variable ``HASHGUARD_*``). Nothing in it is secret: key files are named by path."""

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hashguard.media.limits import MIB, Limits

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class ServiceSettings:
    database_url: str | None = None
    # Request bodies: media uploads, list imports, everything else (JSON).
    max_upload_bytes: int = 64 * MIB
    max_import_bytes: int = 1024 * MIB
    max_json_bytes: int = 2 * MIB
    max_batch: int = 1000  # hashes per match request
    media_limits: Limits = field(
        default_factory=lambda: Limits(max_image_bytes=64 * MIB, max_video_bytes=64 * MIB)
    )
    min_quality: int | None = None  # values of lower quality never match (None: the signal's)
    # Hashing media by URL: off unless hosts are allowed; private, loopback and link-local
    # addresses are refused unless their network is named here.
    fetch_hosts: tuple[str, ...] = ()
    fetch_networks: tuple[Network, ...] = ()
    fetch_timeout: float = 10.0
    # Signed releases through the API: the owner's signing key, the transparency log, where to
    # write releases. Without them the release route answers 409.
    release_key: Path | None = None
    release_log: Path | None = None
    release_dir: Path | None = None
    # Safeguards: the server's secret (webhook signatures are derived from it), who reports,
    # the key that signs EU reports, and where reports go ("" = kept, not sent). NCMEC's
    # password comes from HASHGUARD_NCMEC_PASSWORD only and is never recorded.
    secret_file: Path = Path("hashguard-secret.key")
    provider_name: str = ""
    provider_email: str = ""
    provider_country: str = ""
    report_key: Path | None = None
    eu_centre_url: str = ""
    ncmec_url: str = ""
    ncmec_user: str = ""
    public_url: str = "http://127.0.0.1:8000"  # for links in statements of reasons
    # On-device checks, server-assisted: the VOPRF key (hashguard device keygen) and how many
    # evaluations one device key may ask for per hour. Without a key the route answers 404.
    oprf_key: Path | None = None
    oprf_limit: int = 2000
    refresh_interval: float = 0.2  # seconds between reads of the lists' change logs
    key_cache_seconds: float = 2.0  # a revoked key stops working within this (at once here)

    @property
    def fetching(self) -> bool:
        return bool(self.fetch_hosts)

    def recorded(self) -> dict[str, Any]:
        """The settings as the audit log records them (paths, limits, hosts; no secrets)."""
        return {
            "max_upload_bytes": self.max_upload_bytes,
            "max_import_bytes": self.max_import_bytes,
            "max_json_bytes": self.max_json_bytes,
            "max_batch": self.max_batch,
            "media_limits": {
                name: getattr(self.media_limits, name) for name in self.media_limits.__slots__
            },
            "min_quality": self.min_quality,
            "fetch_hosts": list(self.fetch_hosts),
            "fetch_networks": [str(n) for n in self.fetch_networks],
            "fetch_timeout": self.fetch_timeout,
            "release_key": str(self.release_key or ""),
            "release_log": str(self.release_log or ""),
            "release_dir": str(self.release_dir or ""),
            "secret_file": str(self.secret_file),
            "provider": [self.provider_name, self.provider_email, self.provider_country],
            "report_key": str(self.report_key or ""),
            "eu_centre_url": self.eu_centre_url,
            "ncmec_url": self.ncmec_url,
            "ncmec_user": self.ncmec_user,
            "oprf_key": str(self.oprf_key or ""),
            "oprf_limit": self.oprf_limit,
        }
