-- events
CREATE TABLE IF NOT EXISTS `sendguard`.events (
    tenant String,
    event_id String,
    type String,
    occurred_at DateTime('UTC'),
    sender String,
    sending_domain String,
    recipient String,
    recipient_domain String,
    provider String,
    account String,
    campaign String,
    step String,
    variant String,
    segment String,
    list_source String,
    message_id String,
    bounce_class String,
    bounce_category String,
    bounce_smtp_code Int32,
    bounce_enhanced_code String,
    bounce_diagnostic String,
    bounce_reporting_mta String,
    complaint_source String,
    complaint_feedback_type String,
    complaint_reported_domain String,
    complaint_source_ip String,
    complaint_feedback_provider String,
    unsubscribe_method String,
    unsubscribe_scope String,
    unsubscribe_topic String,
    reply_category String,
    reply_risk String,
    reply_text String,
    reply_subject String,
    placement_provider String,
    placement_folder String,
    placement_tool String,
    placement_test_id String,
    auth_spf String,
    auth_dkim String,
    auth_dmarc_policy String,
    auth_aligned UInt8,
    auth_tls UInt8,
    auth_ptr UInt8,
    postmaster_spam_rate Float64,
    postmaster_domain_reputation String,
    postmaster_delivery_error_rate Float64,
    postmaster_spf_success_rate Float64,
    postmaster_dkim_success_rate Float64,
    postmaster_dmarc_success_rate Float64,
    postmaster_inbound_encryption_rate Float64,
    source String,
    envelope_id String,
    received_at DateTime('UTC'),
    role_account UInt8,
    source_event String,
    inserted_at DateTime('UTC') DEFAULT now()
)
ENGINE = ReplacingMergeTree(inserted_at)
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (tenant, event_id);

CREATE VIEW IF NOT EXISTS `sendguard`.events_final AS
SELECT * FROM `sendguard`.events FINAL;

-- audit
CREATE TABLE IF NOT EXISTS `sendguard`.decisions (
    tenant String,
    decision_id String,
    level String,
    target String,
    rule String,
    rule_set_version String,
    severity String,
    action String,
    at DateTime('UTC'),
    until Nullable(DateTime('UTC')),
    cap_ratio Float64,
    daily_cap Int64,
    from_state String,
    to_state String,
    shadow UInt8,
    health_score Float64,
    priority Int32,
    expl_metric String,
    expl_observed Float64,
    expl_threshold Float64,
    expl_comparator String,
    expl_sample_size Int64,
    expl_window String,
    expl_provider_concentration Float64,
    expl_top_provider String,
    expl_condition String,
    expl_summary String,
    expl_source String,
    inserted_at DateTime('UTC') DEFAULT now()
)
ENGINE = ReplacingMergeTree(inserted_at)
PARTITION BY toYYYYMM(at)
ORDER BY (tenant, decision_id);

CREATE TABLE IF NOT EXISTS `sendguard`.commands (
    tenant String,
    command_id String,
    level String,
    target String,
    action String,
    rule String,
    severity String,
    at DateTime('UTC'),
    until Nullable(DateTime('UTC')),
    issued_at DateTime('UTC'),
    cap_ratio Float64,
    daily_cap Int64,
    actor String,
    reason String,
    decision_id String,
    expl_metric String,
    expl_observed Float64,
    expl_threshold Float64,
    expl_comparator String,
    expl_sample_size Int64,
    expl_window String,
    expl_provider_concentration Float64,
    expl_top_provider String,
    expl_condition String,
    expl_summary String,
    expl_source String,
    inserted_at DateTime('UTC') DEFAULT now()
)
ENGINE = ReplacingMergeTree(inserted_at)
PARTITION BY toYYYYMM(at)
ORDER BY (tenant, command_id);

-- dead_letters
CREATE TABLE IF NOT EXISTS `sendguard`.dead_letters (
    tenant String,
    stage String,
    handler String,
    reason String,
    kafka_topic String,
    kafka_partition Int32,
    kafka_offset Int64,
    key String,
    value String,
    failed_at DateTime('UTC'),
    inserted_at DateTime('UTC') DEFAULT now()
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(failed_at)
ORDER BY (stage, failed_at, kafka_topic, kafka_partition, kafka_offset);

-- rollups
CREATE TABLE IF NOT EXISTS `sendguard`.rollup_minute (
    tenant String,
    level String,
    target String,
    bucket DateTime('UTC'),
    sent UInt64,
    delivered UInt64,
    deferred UInt64,
    hard_bounces UInt64,
    soft_bounces UInt64,
    delivery_errors UInt64,
    complaints UInt64,
    unsubscribes UInt64,
    opens UInt64,
    clicks UInt64,
    replies UInt64,
    positive_replies UInt64,
    negative_replies UInt64,
    ooo_replies UInt64,
    placement_tests UInt64,
    placement_inbox UInt64,
    placement_spam UInt64,
    auth_checks UInt64,
    auth_failures UInt64,
    rejected UInt64
)
ENGINE = SummingMergeTree
PARTITION BY toYYYYMM(bucket)
ORDER BY (tenant, level, target, bucket);

CREATE MATERIALIZED VIEW IF NOT EXISTS `sendguard`.rollup_minute_mv TO `sendguard`.rollup_minute AS
SELECT
    tenant,
    level,
    target,
    toStartOfMinute(occurred_at) AS bucket,
    countIf(type = 'sent') AS sent,
    countIf(type = 'delivered') AS delivered,
    countIf(type = 'deferred') AS deferred,
    countIf(type = 'bounced' AND bounce_class = 'hard') AS hard_bounces,
    countIf(type = 'bounced' AND bounce_class = 'soft') AS soft_bounces,
    countIf(type IN ('bounced', 'rejected')) AS delivery_errors,
    countIf(type = 'complained' AND complaint_feedback_type != 'not_spam') AS complaints,
    countIf(type = 'unsubscribed') AS unsubscribes,
    countIf(type = 'opened') AS opens,
    countIf(type = 'clicked') AS clicks,
    countIf(type = 'replied') AS replies,
    countIf(type = 'replied' AND reply_category IN ('interested', 'referral')) AS positive_replies,
    countIf(type = 'replied' AND reply_category IN ('not_a_fit', 'unsubscribe', 'complaint', 'hostile')) AS negative_replies,
    countIf(type = 'replied' AND reply_category = 'ooo') AS ooo_replies,
    countIf(type = 'placement_test') AS placement_tests,
    countIf(type = 'placement_test' AND placement_folder = 'inbox') AS placement_inbox,
    countIf(type = 'placement_test' AND placement_folder IN ('spam', 'missing')) AS placement_spam,
    countIf(type = 'auth_check') AS auth_checks,
    countIf(type = 'auth_check' AND (auth_spf = 'fail' OR auth_dkim = 'fail' OR auth_dmarc_policy = 'missing' OR auth_aligned = 0)) AS auth_failures,
    countIf(type = 'rejected') AS rejected
FROM `sendguard`.events
ARRAY JOIN
    ['tenant', 'domain', 'sender', 'campaign', 'variant', 'provider', 'domain_provider', 'account', 'segment', 'list_source'] AS level,
    [tenant, sending_domain, sender, campaign, if(variant = '', '', concat(campaign, '/', variant)), provider, if(sending_domain = '' OR provider = '', '', concat(sending_domain, '|', provider)), account, segment, list_source] AS target
WHERE target != ''
GROUP BY tenant, level, target, bucket;

CREATE TABLE IF NOT EXISTS `sendguard`.rollup_hour (
    tenant String,
    level String,
    target String,
    bucket DateTime('UTC'),
    sent UInt64,
    delivered UInt64,
    deferred UInt64,
    hard_bounces UInt64,
    soft_bounces UInt64,
    delivery_errors UInt64,
    complaints UInt64,
    unsubscribes UInt64,
    opens UInt64,
    clicks UInt64,
    replies UInt64,
    positive_replies UInt64,
    negative_replies UInt64,
    ooo_replies UInt64,
    placement_tests UInt64,
    placement_inbox UInt64,
    placement_spam UInt64,
    auth_checks UInt64,
    auth_failures UInt64,
    rejected UInt64
)
ENGINE = SummingMergeTree
PARTITION BY toYYYYMM(bucket)
ORDER BY (tenant, level, target, bucket);

CREATE MATERIALIZED VIEW IF NOT EXISTS `sendguard`.rollup_hour_mv TO `sendguard`.rollup_hour AS
SELECT
    tenant,
    level,
    target,
    toStartOfHour(occurred_at) AS bucket,
    countIf(type = 'sent') AS sent,
    countIf(type = 'delivered') AS delivered,
    countIf(type = 'deferred') AS deferred,
    countIf(type = 'bounced' AND bounce_class = 'hard') AS hard_bounces,
    countIf(type = 'bounced' AND bounce_class = 'soft') AS soft_bounces,
    countIf(type IN ('bounced', 'rejected')) AS delivery_errors,
    countIf(type = 'complained' AND complaint_feedback_type != 'not_spam') AS complaints,
    countIf(type = 'unsubscribed') AS unsubscribes,
    countIf(type = 'opened') AS opens,
    countIf(type = 'clicked') AS clicks,
    countIf(type = 'replied') AS replies,
    countIf(type = 'replied' AND reply_category IN ('interested', 'referral')) AS positive_replies,
    countIf(type = 'replied' AND reply_category IN ('not_a_fit', 'unsubscribe', 'complaint', 'hostile')) AS negative_replies,
    countIf(type = 'replied' AND reply_category = 'ooo') AS ooo_replies,
    countIf(type = 'placement_test') AS placement_tests,
    countIf(type = 'placement_test' AND placement_folder = 'inbox') AS placement_inbox,
    countIf(type = 'placement_test' AND placement_folder IN ('spam', 'missing')) AS placement_spam,
    countIf(type = 'auth_check') AS auth_checks,
    countIf(type = 'auth_check' AND (auth_spf = 'fail' OR auth_dkim = 'fail' OR auth_dmarc_policy = 'missing' OR auth_aligned = 0)) AS auth_failures,
    countIf(type = 'rejected') AS rejected
FROM `sendguard`.events
ARRAY JOIN
    ['tenant', 'domain', 'sender', 'campaign', 'variant', 'provider', 'domain_provider', 'account', 'segment', 'list_source'] AS level,
    [tenant, sending_domain, sender, campaign, if(variant = '', '', concat(campaign, '/', variant)), provider, if(sending_domain = '' OR provider = '', '', concat(sending_domain, '|', provider)), account, segment, list_source] AS target
WHERE target != ''
GROUP BY tenant, level, target, bucket;

CREATE TABLE IF NOT EXISTS `sendguard`.rollup_day (
    tenant String,
    level String,
    target String,
    bucket Date,
    sent UInt64,
    delivered UInt64,
    deferred UInt64,
    hard_bounces UInt64,
    soft_bounces UInt64,
    delivery_errors UInt64,
    complaints UInt64,
    unsubscribes UInt64,
    opens UInt64,
    clicks UInt64,
    replies UInt64,
    positive_replies UInt64,
    negative_replies UInt64,
    ooo_replies UInt64,
    placement_tests UInt64,
    placement_inbox UInt64,
    placement_spam UInt64,
    auth_checks UInt64,
    auth_failures UInt64,
    rejected UInt64
)
ENGINE = SummingMergeTree
PARTITION BY toYYYYMM(bucket)
ORDER BY (tenant, level, target, bucket);

CREATE MATERIALIZED VIEW IF NOT EXISTS `sendguard`.rollup_day_mv TO `sendguard`.rollup_day AS
SELECT
    tenant,
    level,
    target,
    toDate(occurred_at) AS bucket,
    countIf(type = 'sent') AS sent,
    countIf(type = 'delivered') AS delivered,
    countIf(type = 'deferred') AS deferred,
    countIf(type = 'bounced' AND bounce_class = 'hard') AS hard_bounces,
    countIf(type = 'bounced' AND bounce_class = 'soft') AS soft_bounces,
    countIf(type IN ('bounced', 'rejected')) AS delivery_errors,
    countIf(type = 'complained' AND complaint_feedback_type != 'not_spam') AS complaints,
    countIf(type = 'unsubscribed') AS unsubscribes,
    countIf(type = 'opened') AS opens,
    countIf(type = 'clicked') AS clicks,
    countIf(type = 'replied') AS replies,
    countIf(type = 'replied' AND reply_category IN ('interested', 'referral')) AS positive_replies,
    countIf(type = 'replied' AND reply_category IN ('not_a_fit', 'unsubscribe', 'complaint', 'hostile')) AS negative_replies,
    countIf(type = 'replied' AND reply_category = 'ooo') AS ooo_replies,
    countIf(type = 'placement_test') AS placement_tests,
    countIf(type = 'placement_test' AND placement_folder = 'inbox') AS placement_inbox,
    countIf(type = 'placement_test' AND placement_folder IN ('spam', 'missing')) AS placement_spam,
    countIf(type = 'auth_check') AS auth_checks,
    countIf(type = 'auth_check' AND (auth_spf = 'fail' OR auth_dkim = 'fail' OR auth_dmarc_policy = 'missing' OR auth_aligned = 0)) AS auth_failures,
    countIf(type = 'rejected') AS rejected
FROM `sendguard`.events
ARRAY JOIN
    ['tenant', 'domain', 'sender', 'campaign', 'variant', 'provider', 'domain_provider', 'account', 'segment', 'list_source'] AS level,
    [tenant, sending_domain, sender, campaign, if(variant = '', '', concat(campaign, '/', variant)), provider, if(sending_domain = '' OR provider = '', '', concat(sending_domain, '|', provider)), account, segment, list_source] AS target
WHERE target != ''
GROUP BY tenant, level, target, bucket;

