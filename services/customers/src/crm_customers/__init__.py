"""CRM customers service."""
