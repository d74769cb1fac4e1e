"""Who is calling: the one seam where authentication plugs in."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import Request


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of an /api/v1 request."""

    subject: str
    roles: frozenset[str] = field(default_factory=frozenset)

    def has_role(self, role: str) -> bool:
        return role in self.roles


DEVELOPMENT_PRINCIPAL = Principal(subject="development", roles=frozenset({"admin"}))


async def authenticate(request: Request) -> Principal:
    """Resolve the caller of a request; applied to the whole /api/v1 router.

    This is where OIDC bearer verification plugs in: read `Authorization: Bearer <jwt>`
    from `request.headers`, verify it against the issuer's JWKS, raise
    `HTTPException(401)` when it is missing or invalid, and build the Principal from
    its `sub` and role claims. Until then every caller is the development principal.
    """
    return DEVELOPMENT_PRINCIPAL
