"""CRM sales service: deals (opportunities) opened from converted leads, closed as won or lost."""
