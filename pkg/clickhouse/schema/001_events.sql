-- events: every canonical event, one row per (tenant, event_id).
-- ReplacingMergeTree keeps the latest insert of an event id once parts merge;
-- read events_final (or add FINAL) when an exact count of distinct events matters.
-- Enum fields hold the JSON form's short words ('' when unspecified).
CREATE TABLE IF NOT EXISTS `{{.DB}}`.events (
    tenant {{.LC}},
    event_id String,
    type {{.LC}},
    occurred_at {{.DT}},
    sender String,
    sending_domain String,
    recipient String,
    recipient_domain String,
    provider {{.LC}},
    account String,
    campaign String,
    step String,
    variant String,
    segment String,
    list_source String,
    message_id String,
    bounce_class {{.LC}},
    bounce_category {{.LC}},
    bounce_smtp_code Int32,
    bounce_enhanced_code String,
    bounce_diagnostic String,
    bounce_reporting_mta String,
    complaint_source {{.LC}},
    complaint_feedback_type {{.LC}},
    complaint_reported_domain String,
    complaint_source_ip String,
    complaint_feedback_provider String,
    unsubscribe_method {{.LC}},
    unsubscribe_scope {{.LC}},
    unsubscribe_topic String,
    reply_category {{.LC}},
    reply_risk {{.LC}},
    reply_text String,
    reply_subject String,
    placement_provider {{.LC}},
    placement_folder {{.LC}},
    placement_tool String,
    placement_test_id String,
    auth_spf {{.LC}},
    auth_dkim {{.LC}},
    auth_dmarc_policy {{.LC}},
    auth_aligned UInt8,
    auth_tls UInt8,
    auth_ptr UInt8,
    postmaster_spam_rate Float64,
    postmaster_domain_reputation {{.LC}},
    postmaster_delivery_error_rate Float64,
    postmaster_spf_success_rate Float64,
    postmaster_dkim_success_rate Float64,
    postmaster_dmarc_success_rate Float64,
    postmaster_inbound_encryption_rate Float64,
    source {{.LC}},
    envelope_id String,
    received_at {{.DT}},
    role_account UInt8,
    source_event String,
    inserted_at DateTime('UTC') DEFAULT now()
)
ENGINE = ReplacingMergeTree(inserted_at)
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (tenant, event_id);

-- events_final: events with replayed duplicates collapsed at read time.
CREATE VIEW IF NOT EXISTS `{{.DB}}`.events_final AS
SELECT * FROM `{{.DB}}`.events FINAL;
