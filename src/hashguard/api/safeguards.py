"""What a reviewer sets in motion through the service, the same from the API and the desk: an
action on a detection (with its statement of reasons when permanent) and a provider report
(signed with the service's report key, sent when its recipient is configured).

Blocking calls (the database, the report's delivery): run them in the thread pool.
"""

import logging
import os

from hashguard.api.service import Service
from hashguard.errors import Conflict, Unavailable
from hashguard.redress import notices
from hashguard.redress.notices import Notice
from hashguard.reports.eu import Circumstances, Provider
from hashguard.reports.submit import Adapter, CyberTiplineAdapter, EuCentreAdapter, Report
from hashguard.review import actions
from hashguard.review.model import Action, ActionKind, Detection
from hashguard.store.list_errors import ListError
from hashguard.transparency import keys as key_files

log = logging.getLogger("hashguard.api")


class ReportsNotConfigured(Conflict):
    """The service was started without what reports need (the provider, the report key)."""


class ReportKeyUnreadable(Unavailable):
    """The service's report key cannot be read now (its log says why)."""


def act(
    service: Service,
    detection: Detection,
    kind: ActionKind,
    actor: str,
    reason: str,
    language: str = "en",
    country: str = "",
) -> tuple[Action, Notice | None]:
    """Ask ``detection``'s service to act; remove, disable and suspend also issue the user's
    statement of reasons (returned). Raises ReviewError where the detection's state or legal
    profile does not allow the action."""
    if kind is ActionKind.QUARANTINE:
        return actions.take(service.engine, detection.id, kind, actor, reason), None
    complaint_url = service.settings.public_url.rstrip("/") + "/complaints"
    taken, notice, _token = notices.act(service.engine, detection.id, kind, actor, reason,
                                        complaint_url, language, country,
                                        _list_owner(service, detection.list_name))  # fmt: skip
    return taken, notice


def _list_owner(service: Service, name: str) -> str:
    try:
        return service.lists.get(name).owner if name else ""
    except ListError:  # a list removed since: the notice names none
        return ""


def report(
    service: Service, ident: int, recipient: str, circumstances: Circumstances, actor: str
) -> Report:
    """The provider report of confirmed detection ``ident`` for ``recipient``, made (once) and
    sent when the recipient is configured; otherwise kept, built, to send later. Raises
    ReportsNotConfigured, ReportKeyUnreadable, and ReviewError before confirmation."""
    settings = service.settings
    if not (settings.provider_name and settings.provider_email and settings.provider_country):
        missing = "the provider's name, e-mail and country (serve --provider-name/-email/-country)"
        raise ReportsNotConfigured(f"reports need {missing}")
    if settings.report_key is None:
        raise ReportsNotConfigured("reports are signed: start the service with --report-key")
    try:
        signing = key_files.load(settings.report_key)
    except key_files.KeyFileError as error:  # the server's configuration, not the request
        log.error("the report key cannot be used: %s", error)
        raise ReportKeyUnreadable("reports cannot be signed now: the service's report key "
                                  "cannot be read (its log says why)") from None  # fmt: skip
    provider = Provider(settings.provider_name, settings.provider_email,
                        settings.provider_country)  # fmt: skip
    made = service.reports.make(ident, recipient, provider, circumstances, signing, actor)
    adapter = _adapter(service, recipient)
    if adapter is not None:
        made = service.reports.submit(made.id, adapter, actor)
    return made


def _adapter(service: Service, recipient: str) -> Adapter | None:
    settings = service.settings
    if recipient == "eu-centre" and settings.eu_centre_url:
        return EuCentreAdapter(settings.eu_centre_url)
    if recipient == "ncmec" and settings.ncmec_url:
        password = os.environ.get("HASHGUARD_NCMEC_PASSWORD", "")  # never in settings or logs
        return CyberTiplineAdapter(settings.ncmec_url, settings.ncmec_user, password)
    return None
