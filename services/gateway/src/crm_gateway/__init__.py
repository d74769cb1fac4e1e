"""CRM gateway service."""
