"""crm-admin: the operator's command line for a running CRM."""
