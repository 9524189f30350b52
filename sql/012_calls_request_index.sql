-- The call <-> log join looks calls up by day and request ID (built online, in place). The day first:
-- request IDs are random, and an index on them alone would take each insert to a random page of years of
-- history (no longer in memory); by day, inserts stay in today's pages, and a log's call is found among the
-- calls of its day and the days beside it.
ALTER TABLE bedrock_calls ADD KEY ix_calls_day_request (event_date, request_id);
