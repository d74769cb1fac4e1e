"""Cross-cutting concerns every route shares: authentication, permissions, problem+json errors,
middleware, Idempotency-Key, rate limits, security headers and who the client is."""
