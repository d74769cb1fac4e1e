"""The SLA clock engine: business-hours calendars (weekly windows, holidays, short days) and the clock that
measures a ticket's business time from its status history. Pure Python, no I/O, so it is unit tested alone."""
