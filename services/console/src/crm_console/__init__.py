"""The CRM web console: server-rendered, right-to-left pages over the gateway's public API."""
