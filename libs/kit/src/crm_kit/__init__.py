"""crm_kit: the microservice chassis every CRM service calls once.

Plumbing lives here exactly once: settings, JSON logs, traces, metrics, database unit of
work, transactional outbox and relay, inbox de-duplication, the JetStream bus with dead
letters, the gRPC server and client set-up, migrations and the service runner.
"""
