"""The support service: tickets and complaints, queues, SLA calendars, satisfaction surveys."""
