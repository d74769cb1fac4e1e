"""/messages: the messages the CRM sent customers (SMS, e-mail), for admins, orders and service;
and the preview of a message before anything is sent, for marketing."""

from __future__ import annotations

from crm.notifications.v1 import notifications_pb2
from crm_gateway.convert import to_model
from crm_gateway.deps import Caller, Clients, FilterId, PageSize, PageToken, ResourceId, api_router
from crm_gateway.features.messages.schemas import MessageList, MessagePreview, NotificationMessage, PreviewMessageIn
from crm_gateway.records import read
from crm_kit import protoconv

router = api_router()


@router.get("/messages", tags=["messages"], operation_id="listMessages")
async def list_messages(
    clients: Clients,
    principal: Caller,
    order_id: FilterId = "",
    lead_id: FilterId = "",
    page_size: PageSize = 0,
    page_token: PageToken = "",
) -> MessageList:
    reply = await read(
        clients.notifications.ListMessages,
        notifications_pb2.ListMessagesRequest(
            page_size=protoconv.page_size(page_size),
            page_token=page_token,
            order_id=order_id,
            lead_id=lead_id,
        ),
    )
    return to_model(MessageList, reply)


@router.get("/messages/{message_id}", tags=["messages"], operation_id="getMessage")
async def get_message(message_id: ResourceId, clients: Clients, principal: Caller) -> NotificationMessage:
    reply = await read(clients.notifications.GetMessage, notifications_pb2.GetMessageRequest(message_id=message_id))
    return to_model(NotificationMessage, reply.message)


@router.post("/message-previews", tags=["messages"], operation_id="previewMessage")
async def preview_message(body: PreviewMessageIn, clients: Clients, principal: Caller) -> MessagePreview:
    """The message as a sample recipient in its locale would read it, the SMS parts it costs, and
    for advertising what the country's rules find missing (Israel: "פרסומת" first, the advertiser
    and how to reach them, how to refuse by reply; Iran: "لغو ۱۱" last). Sends and stores nothing."""
    reply = await clients.notifications.PreviewMessage(body.to_proto())
    return to_model(MessagePreview, reply)
