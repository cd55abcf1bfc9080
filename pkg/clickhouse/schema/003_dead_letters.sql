-- dead_letters: messages a stage gave up on, with the exact bytes and why,
-- so they can be inspected and re-driven. Never expires.
CREATE TABLE IF NOT EXISTS `{{.DB}}`.dead_letters (
    tenant String,
    stage {{.LC}},
    handler {{.LC}},
    reason String,
    kafka_topic String,
    kafka_partition Int32,
    kafka_offset Int64,
    key String,
    value String,
    failed_at {{.DT}},
    inserted_at DateTime('UTC') DEFAULT now()
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(failed_at)
ORDER BY (stage, failed_at, kafka_topic, kafka_partition, kafka_offset);
