"""CRM orders service."""
