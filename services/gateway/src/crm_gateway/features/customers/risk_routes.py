"""/customers/{id}/risk and /customers/{id}/value: how likely the customer is to leave, and why
(reporting's RetentionService); what they are worth (ReportingService's customer value). Whoever
sells to or serves the customer reads them; the gateway reads the customer first, so another rep's
customer is 404 before reporting is asked."""

from __future__ import annotations

from crm.reporting.v1 import reporting_pb2, retention_pb2
from crm_gateway import records
from crm_gateway.convert import message_to_dict
from crm_gateway.deps import Caller, Clients, ResourceId, api_router
from crm_gateway.features.reports.schemas import CustomerValueOne
from crm_gateway.features.retention_lists.schemas import CustomerRisk
from crm_gateway.records import read

router = api_router()


@router.get("/customers/{customer_id}/risk", tags=["customers"], operation_id="getCustomerRisk")
async def get_customer_risk(customer_id: ResourceId, clients: Clients, principal: Caller) -> CustomerRisk:
    """The risk (0 to 1), its band (low below 0.3, high from 0.6) and its reasons, largest first,
    from the customer's purchases against their own history, complaints, SLA breaches, opt-outs,
    silence and lost deals; status no_purchases for a customer who never bought."""
    customer = await records.customer(clients, principal, customer_id)
    reply = await read(clients.retention.GetCustomerRisk, retention_pb2.GetCustomerRiskRequest(customer_id=customer.id))
    return CustomerRisk.model_validate({**message_to_dict(reply), "band": reply.band or None})


@router.get("/customers/{customer_id}/value", tags=["customers"], operation_id="getCustomerValue")
async def get_customer_value(customer_id: ResourceId, clients: Clients, principal: Caller) -> CustomerValueOne:
    """RFM quintile scores among every buyer with the named segment (champions, loyal, cannot_lose,
    at_risk, …), lifetime value to date and per year since the first purchase."""
    customer = await records.customer(clients, principal, customer_id)
    reply = await read(
        clients.reporting.GetCustomerValue, reporting_pb2.GetCustomerValueRequest(customer_id=customer.id)
    )
    return CustomerValueOne.model_validate(message_to_dict(reply))
