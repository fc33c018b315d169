-- The consumer offsets the sinks commit in the same transaction as the rows they cover: on start a
-- sink resumes from here, never from Kafka's own group offsets, so a crash neither loses nor doubles.
CREATE TABLE consumer_offsets (
    consumer_group text    NOT NULL,
    topic          text    NOT NULL,
    kafka_partition integer NOT NULL,
    next_offset    bigint  NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, topic, kafka_partition)
);
