"""Public SPF API: check_host() (RFC 7208), its result type and the record parser."""

from __future__ import annotations

from domaincheck.spf_eval import (
    DEFAULT_EXPLANATION,
    SpfAssumption,
    SpfLimits,
    SpfResult,
    SpfResultCode,
    check_host,
    check_sender,
    split_sender,
)
from domaincheck.spf_parse import (
    Mechanism,
    Modifier,
    SpfRecord,
    SyntaxIssue,
    is_spf_record,
    parse_record,
    select_spf_records,
)

__all__ = [
    "DEFAULT_EXPLANATION",
    "Mechanism",
    "Modifier",
    "SpfAssumption",
    "SpfLimits",
    "SpfRecord",
    "SpfResult",
    "SpfResultCode",
    "SyntaxIssue",
    "check_host",
    "check_sender",
    "is_spf_record",
    "parse_record",
    "select_spf_records",
    "split_sender",
]
