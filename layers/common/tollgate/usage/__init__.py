"""Usage-based billing: the queue contract, the producer helper, the ledger, the meter transports and the
reporter that turns usage messages into Stripe meter events exactly once. See docs/usage-contract.md."""

from tollgate.usage.contract import SCHEMA_VERSION, MalformedUsage, UsageMessage, parse_usage_message
from tollgate.usage.meter_errors import MeterErrorLinks, link_meter_error_report
from tollgate.usage.producer import RejectedUsage, UsageProducer
from tollgate.usage.reporter import InboundRecord, Outcome, RecordOutcome, UsageReporter

__all__ = [
    "SCHEMA_VERSION",
    "InboundRecord",
    "MalformedUsage",
    "MeterErrorLinks",
    "Outcome",
    "RecordOutcome",
    "RejectedUsage",
    "UsageMessage",
    "UsageProducer",
    "UsageReporter",
    "link_meter_error_report",
    "parse_usage_message",
]
