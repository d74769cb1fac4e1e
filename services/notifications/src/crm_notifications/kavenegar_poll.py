"""What Kavenegar has to say after a send, fetched: it offers its delivery statuses and a line's
inbound SMS to be read (``sms/status.json``, ``sms/receive.json``) where the generic provider calls
us back. A periodic job asks for both and hands them to the same code a callback reaches
(``replies.Replies``): a receipt settles its message once, a reply of 11 or لغو refuses at once.

- Receipts: the SMS sent in the last three days whose fate no receipt has settled, up to 500 a
  round (the status call's limit), oldest first. Statuses 1, 2, 4 and 5 are on their way (nothing
  recorded); 10 delivered; 11 undelivered; 6, 13, 14 failed; 100 an id Kavenegar does not know
  (skipped, logged once a round).
- Replies: the sender line's unread inbox, up to 100 a round. Kavenegar marks what it returns as
  read, so a process that dies between the fetch and the record loses those replies: the records
  are made one by one at once, and each is idempotent by Kavenegar's message id. A lost refusal is
  still honoured the next time the person answers. (`sms/inboxpaged.json` by date would close that
  window; not done.)
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from crm.notifications.v1 import promotions_pb2
from crm_kit.db import Database
from crm_kit.errors import InvalidArgument
from crm_notifications import promotion_store, receipts
from crm_notifications.kavenegar import MAX_STATUS_IDS, KavenegarError, KavenegarSmsProvider
from crm_notifications.replies import Replies

log = logging.getLogger(__name__)

RECEIPT_WINDOW = timedelta(days=3)


class KavenegarPoller:
    def __init__(self, db: Database, provider: KavenegarSmsProvider, replies: Replies, *, line_number: str) -> None:
        self.db = db
        self.provider = provider
        self.replies = replies
        self.line_number = line_number

    async def poll(self) -> int:
        """One round: receipts, then replies; how many were recorded."""
        try:
            return await self.receipts() + await self.inbound()
        except KavenegarError as exc:
            log.warning("Kavenegar could not be read; the next round asks again", extra={"error": str(exc)})
            return 0

    async def receipts(self) -> int:
        since = datetime.now(UTC) - RECEIPT_WINDOW
        async with self.db.unit_of_work() as uow:
            waiting = await promotion_store.awaiting_receipts(uow, since, MAX_STATUS_IDS)
        recorded = 0
        for message_id, status in await self.provider.statuses(waiting):
            try:
                receipt = receipts.parse_kavenegar({"messageid": message_id, "status": str(status)})
            except receipts.ReceiptError:
                continue  # 100: an id Kavenegar does not know; 50: inbound
            if receipt.status == "sent":
                continue  # still on its way
            request = promotions_pb2.RecordDeliveryReceiptRequest(
                provider_message_id=receipt.provider_message_id, status=receipt.status
            )
            recorded += await self.replies.receipt(request)
        return recorded

    async def inbound(self) -> int:
        if not self.line_number.strip():
            return 0
        recorded = 0
        for sms in await self.provider.inbox(self.line_number):
            request = promotions_pb2.ReceiveInboundSmsRequest(
                provider_message_id=f"kavenegar:{sms.message_id}",
                from_number=sms.sender,
                to_number=sms.receptor,
                text=sms.text,
            )
            if sms.date is not None:
                request.receive_time.FromDatetime(datetime.fromtimestamp(sms.date, UTC))
            try:
                _, applied = await self.replies.receive(request)
            except InvalidArgument:  # one unreadable reply (a bad sender) never stops the rest
                log.warning("a Kavenegar reply could not be read", extra={"message_id": sms.message_id})
                continue
            recorded += applied
        return recorded
