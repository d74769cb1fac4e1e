"""CRM reporting service."""
