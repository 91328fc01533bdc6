"""The hotline's states and the words shared by its parts (no database, no network here).

A case is one reported URL. Its life: ``new`` (reported, waiting for the crawler) ->
``crawling`` (claimed by one instance, under a lease) -> ``triaged`` (crawled; its items
matched; some wait for an analyst) -> ``assessed`` (every item decided: by triage or by
analysts) -> ``routed`` (traced and sent where the routing rules say). A case whose page could
not be fetched at all is ``unreachable`` (the fetch record says why), traced all the same.

An item is one medium found on a case's page, by its hashes: ``queued`` for an analyst,
``pending`` (four eyes: one analyst has assessed it, a second must agree), ``assessed``, or
``auto`` (triaged without anyone viewing it: an earlier assessment or a known list matched).
``failed``: it could not be fetched or hashed (nothing to assess; the fetch record says why).

What a reporter sees of a report, through its status token, is one of three words.
"""

from enum import StrEnum


class CaseState(StrEnum):
    NEW = "new"
    CRAWLING = "crawling"
    TRIAGED = "triaged"
    ASSESSED = "assessed"
    ROUTED = "routed"
    UNREACHABLE = "unreachable"


class ItemState(StrEnum):
    QUEUED = "queued"
    PENDING = "pending"
    ASSESSED = "assessed"
    AUTO = "auto"
    FAILED = "failed"


DECIDED = frozenset({ItemState.ASSESSED, ItemState.AUTO, ItemState.FAILED})
WAITING = frozenset({ItemState.QUEUED, ItemState.PENDING})  # for an analyst


class PublicStatus(StrEnum):
    """What a reporter may know: nothing about content, hosting or who assessed it."""

    RECEIVED = "received"
    ASSESSED = "assessed"
    ACTION_TAKEN = "action taken"


class AssessmentState(StrEnum):
    PENDING = "pending"  # four eyes: waiting for a second analyst
    FINAL = "final"
    DISAGREED = "disagreed"  # the second analyst chose other labels: back to the queue


class OutboxKind(StrEnum):
    REFERRAL = "referral"
    POLICE = "police"
    INTERNATIONAL = "international"
    STATUS = "status"  # a referral's takedown status, back to the partner that referred it


PUBLIC_SOURCE = "public"


def partner_source(name: str) -> str:
    """A report's source when a partner hotline referred it."""
    return f"partner:{name}"
