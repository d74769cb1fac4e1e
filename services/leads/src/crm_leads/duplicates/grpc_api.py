"""DuplicatesService: possible duplicates, merges and incomplete records (proto ↔ duplicates
commands and queries)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import grpc

from crm.leads.v1 import duplicates_pb2, duplicates_pb2_grpc
from crm_kit.db import Database, UnitOfWork
from crm_kit.errors import require
from crm_kit.protoconv import encode_page_token, page_position, page_size, to_timestamp
from crm_leads.duplicates import commands, domain, queries
from crm_leads.leads import queries as lead_queries
from crm_leads.leads.lead_proto import lead_to_proto

_STATUS = {
    domain.OPEN: duplicates_pb2.POSSIBLE_DUPLICATE_STATUS_OPEN,
    domain.MERGED: duplicates_pb2.POSSIBLE_DUPLICATE_STATUS_MERGED,
    domain.DISMISSED: duplicates_pb2.POSSIBLE_DUPLICATE_STATUS_DISMISSED,
}
_STATUS_NAME = {v: k for k, v in _STATUS.items()}


async def pair_to_proto(uow: UnitOfWork, row: Any) -> duplicates_pb2.PossibleDuplicate:
    return duplicates_pb2.PossibleDuplicate(
        id=row.id,
        lead=lead_to_proto(await lead_queries.get_lead(uow, row.lead_id)),
        other_lead=lead_to_proto(await lead_queries.get_lead(uow, row.other_lead_id)),
        score=row.score,
        reasons=list(row.reasons),
        status=_STATUS[row.status],
        create_time=to_timestamp(row.created_at),
        resolve_time=to_timestamp(row.resolved_at),
        resolved_by=row.resolved_by,
    )


class DuplicatesServicer(duplicates_pb2_grpc.DuplicatesServiceServicer):
    def __init__(self, db: Database) -> None:
        self.db = db

    async def ListPossibleDuplicates(
        self, request: duplicates_pb2.ListPossibleDuplicatesRequest, context: grpc.aio.ServicerContext
    ) -> duplicates_pb2.ListPossibleDuplicatesResponse:
        limit = page_size(request.page_size)
        status = _STATUS_NAME.get(request.status, domain.OPEN)
        async with self.db.unit_of_work() as uow:
            rows, next_key = await queries.list_pairs(
                uow,
                limit=limit,
                after=page_position(request.page_token, datetime.fromisoformat, str),
                status=status,
                team_id=request.team_id,
                lead_id=request.lead_id,
            )
            pairs = [await pair_to_proto(uow, r) for r in rows]
        return duplicates_pb2.ListPossibleDuplicatesResponse(
            possible_duplicates=pairs, next_page_token=encode_page_token(*next_key) if next_key else ""
        )

    async def GetPossibleDuplicate(
        self, request: duplicates_pb2.GetPossibleDuplicateRequest, context: grpc.aio.ServicerContext
    ) -> duplicates_pb2.GetPossibleDuplicateResponse:
        require({"possible_duplicate_id": request.possible_duplicate_id})
        async with self.db.unit_of_work() as uow:
            row = await queries.get_pair(uow, request.possible_duplicate_id)
            return duplicates_pb2.GetPossibleDuplicateResponse(possible_duplicate=await pair_to_proto(uow, row))

    async def DismissPossibleDuplicate(
        self, request: duplicates_pb2.DismissPossibleDuplicateRequest, context: grpc.aio.ServicerContext
    ) -> duplicates_pb2.DismissPossibleDuplicateResponse:
        require({"possible_duplicate_id": request.possible_duplicate_id})
        async with self.db.unit_of_work() as uow:
            row = await commands.dismiss_pair(uow, request.possible_duplicate_id)
            pair = await pair_to_proto(uow, row)
        return duplicates_pb2.DismissPossibleDuplicateResponse(possible_duplicate=pair)

    async def MergeLeads(
        self, request: duplicates_pb2.MergeLeadsRequest, context: grpc.aio.ServicerContext
    ) -> duplicates_pb2.MergeLeadsResponse:
        require({"lead_id": request.lead_id, "duplicate_lead_id": request.duplicate_lead_id})
        async with self.db.unit_of_work() as uow:
            view = await commands.merge_leads(uow, request.lead_id, request.duplicate_lead_id)
        return duplicates_pb2.MergeLeadsResponse(lead=lead_to_proto(view))

    async def ListIncompleteLeads(
        self, request: duplicates_pb2.ListIncompleteLeadsRequest, context: grpc.aio.ServicerContext
    ) -> duplicates_pb2.ListIncompleteLeadsResponse:
        limit = page_size(request.page_size)
        async with self.db.unit_of_work() as uow:
            views, next_key = await queries.list_incomplete(
                uow,
                limit=limit,
                after=page_position(request.page_token, datetime.fromisoformat, str),
                rep_id=request.rep_id,
                team_id=request.team_id,
            )
        return duplicates_pb2.ListIncompleteLeadsResponse(
            leads=[lead_to_proto(v) for v in views], next_page_token=encode_page_token(*next_key) if next_key else ""
        )
