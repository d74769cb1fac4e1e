"""The REST resources, one package per resource: `routes.py` (validate, call the backend over
gRPC, convert the reply) and `schemas.py` (its request and response bodies).

A path's package is its first segment after /api/v1, dashes as underscores (/lead-imports/{id}
→ lead_imports). Under a record, an action on it (/leads/{id}/convert, /deals/{id}/close) or a
view of it (/leads/{id}/routing, /customers/{id}/timeline) lives with the record; a collection
of another resource (/leads/{id}/activities) lives with that resource. The public web-form
capture (/public/web-form-submissions) and its keys (/web-form-keys) are one package, web_forms.
"""
