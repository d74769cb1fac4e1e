"""/tax-rates: VAT by country and tax class, each rate in force from its valid_from until the next
(every sales role reads them; only admins add one: a legal setting, see docs/selling.md). Served
by the sales service (crm.sales.v1.CatalogService)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from crm.sales.v1 import catalog_pb2
from crm_gateway.convert import to_model
from crm_gateway.deps import Caller, Clients, api_router
from crm_gateway.features.tax_rates.schemas import CreateTaxRateIn, TaxRate, TaxRateList
from crm_gateway.records import read

router = api_router()


@router.get("/tax-rates", tags=["catalog"], operation_id="listTaxRates")
async def list_tax_rates(
    clients: Clients,
    principal: Caller,
    country_code: Annotated[str, Query(pattern=r"^([A-Z]{2})?$", description="Only this country's")] = "",
) -> TaxRateList:
    """Rates by country, tax class and the day each starts."""
    request = catalog_pb2.ListTaxRatesRequest(country_code=country_code)
    return to_model(TaxRateList, await read(clients.catalog.ListTaxRates, request))


@router.post("/tax-rates", status_code=201, tags=["catalog"], operation_id="createTaxRate")
async def create_tax_rate(body: CreateTaxRateIn, clients: Clients, principal: Caller) -> TaxRate:
    """A rate from valid_from on; past documents keep theirs. The same rate again answers it;
    another rate starting the same day is 409."""
    reply = await clients.catalog.CreateTaxRate(body.to_proto())
    return to_model(TaxRate, reply.tax_rate)
