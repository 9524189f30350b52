"""Audits: replay a period into an isolated namespace and compare it with the record; reconcile the
metered cost with the AWS bill. Run by an admin (`bedrockctl replay`, `bedrockctl bill reconcile`), never
as a service: it reads the live state and writes only namespaces of its own."""
