-- events
CREATE TABLE IF NOT EXISTS `sendguard`.events (
    tenant LowCardinality(String),
    event_id String,
    type LowCardinality(String),
    occurred_at DateTime64(3, 'UTC'),
    sender String,
    sending_domain String,
    recipient String,
    recipient_domain String,
    provider LowCardinality(String),
    account String,
    campaign String,
    step String,
    variant String,
    segment String,
    list_source String,
    message_id String,
    bounce_class LowCardinality(String),
    bounce_category LowCardinality(String),
    bounce_smtp_code Int32,
    bounce_enhanced_code String,
    bounce_diagnostic String,
    bounce_reporting_mta String,
    complaint_source LowCardinality(String),
    complaint_feedback_type LowCardinality(String),
    complaint_reported_domain String,
    complaint_source_ip String,
    complaint_feedback_provider String,
    unsubscribe_method LowCardinality(String),
    unsubscribe_scope LowCardinality(String),
    unsubscribe_topic String,
    reply_category LowCardinality(String),
    reply_risk LowCardinality(String),
    reply_text String,
    reply_subject String,
    placement_provider LowCardinality(String),
    placement_folder LowCardinality(String),
    placement_tool String,
    placement_test_id String,
    auth_spf LowCardinality(String),
    auth_dkim LowCardinality(String),
    auth_dmarc_policy LowCardinality(String),
    auth_aligned UInt8,
    auth_tls UInt8,
    auth_ptr UInt8,
    postmaster_spam_rate Float64,
    postmaster_domain_reputation LowCardinality(String),
    postmaster_delivery_error_rate Float64,
    postmaster_spf_success_rate Float64,
    postmaster_dkim_success_rate Float64,
    postmaster_dmarc_success_rate Float64,
    postmaster_inbound_encryption_rate Float64,
    source LowCardinality(String),
    envelope_id String,
    received_at DateTime64(3, 'UTC'),
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
    tenant LowCardinality(String),
    decision_id String,
    level LowCardinality(String),
    target String,
    rule String,
    rule_set_version String,
    severity LowCardinality(String),
    action LowCardinality(String),
    at DateTime64(3, 'UTC'),
    until Nullable(DateTime64(3, 'UTC')),
    cap_ratio Float64,
    daily_cap Int64,
    from_state LowCardinality(String),
    to_state LowCardinality(String),
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
    tenant LowCardinality(String),
    command_id String,
    level LowCardinality(String),
    target String,
    action LowCardinality(String),
    rule String,
    severity LowCardinality(String),
    at DateTime64(3, 'UTC'),
    until Nullable(DateTime64(3, 'UTC')),
    issued_at DateTime64(3, 'UTC'),
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
    stage LowCardinality(String),
    handler LowCardinality(String),
    reason String,
    kafka_topic String,
    kafka_partition Int32,
    kafka_offset Int64,
    key String,
    value String,
    failed_at DateTime64(3, 'UTC'),
    inserted_at DateTime('UTC') DEFAULT now()
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(failed_at)
ORDER BY (stage, failed_at, kafka_topic, kafka_partition, kafka_offset);

-- rollups
CREATE TABLE IF NOT EXISTS `sendguard`.rollup_minute (
    tenant LowCardinality(String),
    level LowCardinality(String),
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
ORDER BY (tenant, level, target, bucket)
TTL toDate(bucket) + toIntervalDay(35);

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
    tenant LowCardinality(String),
    level LowCardinality(String),
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
ORDER BY (tenant, level, target, bucket)
TTL toDate(bucket) + toIntervalDay(400);

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
    tenant LowCardinality(String),
    level LowCardinality(String),
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

