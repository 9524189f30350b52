-- The audit trail by decision: the consumer's rebuild republishes the decisions of the open periods that no
-- enforcer has acted on (NOT EXISTS on enforcement_actions.decision_id) while counting waits, and the replay's
-- decisions audit links each action to its decision. Without an index that is a scan of the trail per decision.
ALTER TABLE enforcement_actions ADD KEY ix_actions_decision (decision_id);
