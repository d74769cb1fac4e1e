"""/customers/{id}/suggestions: cross-sell and upsell on the customer's page, from the reporting
service's association rules over what customers bought; the offers made of them and the answers.
Whoever may read the customer (a rep: customers of leads they own) sees and records them; the
gateway reads the customer first, so another's customer is 404 before reporting is asked."""

from __future__ import annotations

from crm.reporting.v1 import reporting_pb2
from crm_gateway import records
from crm_gateway.convert import to_model
from crm_gateway.deps import Caller, Clients, IdempotencyKey, ResourceId, api_router
from crm_gateway.features.customers.cross_sell_schemas import CrossSellOffer, CrossSellOfferIn, ProductSuggestions
from crm_gateway.records import read

router = api_router()

# Reporting reads a customer's purchases by lead; it takes at most this many (a customer's leads
# are their returns under other details: far fewer in practice).
MAX_LEADS = 100


@router.get("/customers/{customer_id}/suggestions", tags=["customers"], operation_id="listProductSuggestions")
async def list_product_suggestions(customer_id: ResourceId, clients: Clients, principal: Caller) -> ProductSuggestions:
    """What to offer the customer: products they have not bought that buyers of what they bought
    also bought, each with its reason (what they bought and when, and the share of its buyers who
    bought the suggestion) and the latest offer of it. Rules are relearned every 10 minutes; below
    20 buyers status is too_little_data."""
    customer = await records.customer(clients, principal, customer_id)
    reply = await read(
        clients.reporting.SuggestProducts,
        reporting_pb2.SuggestProductsRequest(customer_id=customer.id, lead_ids=customer.lead_ids[:MAX_LEADS]),
    )
    return to_model(ProductSuggestions, reply)


@router.post(
    "/customers/{customer_id}/suggestions/offers",
    status_code=201,
    tags=["customers"],
    operation_id="recordCrossSellOffer",
)
async def record_cross_sell_offer(
    customer_id: ResourceId,
    body: CrossSellOfferIn,
    clients: Clients,
    principal: Caller,
    idempotency_key: IdempotencyKey = None,
) -> CrossSellOffer:
    """Record that a product was offered to the customer and their answer (accepted or declined),
    with the rule that suggested it; the cross-sell report counts it, and whether the customer then
    bought it. The same request repeated with its request_id (or Idempotency-Key) answers the
    first record."""
    customer = await records.customer(clients, principal, customer_id)
    reply = await clients.reporting.RecordCrossSellOffer(
        reporting_pb2.RecordCrossSellOfferRequest(
            customer_id=customer.id,
            lead_ids=customer.lead_ids[:MAX_LEADS],
            sku=body.sku,
            response=body.response,
            request_id=body.request_id or (idempotency_key or "").strip(),
        )
    )
    return to_model(CrossSellOffer, reply.offer)
