"""What `make dev` prints of the functions' logs: one readable line per record at INFO, metric objects only when
asked, everything as Lambda writes it at DEBUG."""

from __future__ import annotations

import json
import logging

import pytest

from devstack.function_logs import LogView

RECORD = {
    "level": "INFO",
    "location": "apply:120",
    "message": "event applied",
    "timestamp": "2026-12-02 21:00:00,000+0000",
    "service": "tollgate",
    "cold_start": False,
    "function_name": "tollgate-dev-WebhookFunction",
    "function_request_id": "c6af9ac6-7b61-11e6-9a41-93e812345678",
    "xray_trace_id": "1-5759e988-bd862e3fe1be46a994272793",
    "event_id": "evt_1NG8Du2eZvKYlo2CUI79vXWy",
    "event_type": "invoice.paid",
}
METRICS = {
    "_aws": {
        "Timestamp": 1764709200000,
        "CloudWatchMetrics": [
            {"Namespace": "tollgate", "Dimensions": [["service"]], "Metrics": [{"Name": "WebhookLagSeconds"}]}
        ],
    },
    "service": "tollgate",
    "WebhookLagSeconds": [2.0],
}


def test_a_record_is_one_line_with_its_level_message_and_own_keys() -> None:
    shown = LogView().render(json.dumps(RECORD) + "\n")
    # The context every record carries (function, request id, trace id, location) is left out
    assert shown == (
        logging.INFO,
        "INFO    event applied  event_id=evt_1NG8Du2eZvKYlo2CUI79vXWy event_type=invoice.paid",
    )


def test_metric_objects_are_hidden_unless_asked_for() -> None:
    line = json.dumps(METRICS)
    assert LogView().render(line) is None
    assert LogView(show_metrics=True).render(line) == (logging.INFO, "METRICS WebhookLagSeconds=[2.0]")


def test_records_below_the_level_are_dropped_and_debug_shows_the_raw_record() -> None:
    debug_record = json.dumps({**RECORD, "level": "DEBUG", "message": "event type not handled"})
    assert LogView().render(debug_record) is None
    # Control: asked for DEBUG, the record comes through exactly as Lambda wrote it
    assert LogView.named("debug").render(debug_record) == (logging.DEBUG, debug_record)


def test_long_values_are_cut_and_text_that_is_not_json_passes_through() -> None:
    shown = LogView().render(json.dumps({**RECORD, "detail": "x" * 500}))
    assert shown is not None
    assert shown[1].endswith("detail=" + "x" * 79 + "…")
    assert LogView().render("Traceback (most recent call last):\n") == (
        logging.INFO,
        "Traceback (most recent call last):",
    )
    assert LogView().render("\n") is None


def test_an_unknown_level_name_is_refused() -> None:
    with pytest.raises(ValueError, match="DEVSTACK_LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR"):
        LogView.named("loud")
