"""Quotes on deals: their lines and totals, versions, and the document a customer receives."""
