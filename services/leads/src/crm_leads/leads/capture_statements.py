"""The statements one capture sends (crm_leads.leads.commands.capture_in), each doing what used to
take several round trips, and each built once per shape (not per call): a capture costs the
database a handful of statements and the service little SQL building.

1. opening: the contact points' advisory locks (crm_leads.duplicates.commands), the capture
   configuration version (crm_leads.config_cache), the web form key share-locked, and the lead or
   touch a request id already captured;
2. person: after the locks (a separate statement, so that its snapshot sees the lead of a
   concurrent capture of the same person that held them), the oldest lead with the phone number,
   else the e-mail, locked when it is live, and whether the request id was taken meanwhile;
3. a new person: the team's round-robin turn with the name look-alikes, then the lead inserted
   with its possible-duplicate pairs; a returning person: the touch inserted, the lead updated and
   read back as the API shows it.
"""

from __future__ import annotations

from functools import cache

from sqlalchemy import ARRAY, Integer, String, TextClause, bindparam, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql.selectable import TextualSelect

from crm_leads.duplicates.queries import MAX_NAME_CANDIDATES
from crm_leads.leads.queries import LEAD_COLUMNS, REP_NAME

_LEAD_COLUMNS = [c.name for c in LEAD_COLUMNS]
_COLUMN = {c.name: c for c in LEAD_COLUMNS}
# What a touch reads of the lead it locks: survivorship's fields, the count and the owner (reach).
TOUCHED_LEAD_FIELDS = ("phone_number", "email", "city", "region", "product_line")
# Everything of a new lead's row but the columns the database fills (defaults).
INSERTED_LEAD_COLUMNS = (
    "id",
    "request_scope",
    "request_id",
    "full_name",
    "phone_number",
    "email",
    "source",
    "campaign",
    "locale",
    "product_line",
    "status",
    "rep_id",
    "team_id",
    "rule_id",
    "assign_reason",
    "assigned_at",
    "created_at",
    "web_form_key_id",
    "campaign_id",
    "city",
    "region",
    "first_response_due_at",
    "sla_seconds",
    "breach_action",
    "sla_clock_running",
    "routing_explanation",
    "name_key",
    "name_compact",
    "name_skeleton",
    "missing_fields",
)


def _lead_view_select(source: str) -> str:
    """The lead view's columns (crm_leads.leads.queries.lead_view_query) of a lead row source."""
    columns = ", ".join(f"{source}.{name}" for name in _LEAD_COLUMNS)
    return (
        f"SELECT {columns}, reps.name AS rep_name, lead_conversions.deal_id FROM {source} "
        f"LEFT OUTER JOIN reps ON reps.id = {source}.rep_id "
        "LEFT OUTER JOIN lead_conversions ON lead_conversions.lead_id = " + f"{source}.id"
    )


def _lead_view_columns(statement: TextClause, **extra: object) -> TextualSelect:
    return statement.columns(*[_COLUMN[n] for n in _LEAD_COLUMNS], REP_NAME.label("rep_name"), **extra)  # type: ignore[arg-type]


# ---------------------------------------------------------------- 1. opening


@cache
def opening(locks: int, *, request_id: bool, web_form_key: bool) -> TextClause:
    """Bind k0…k{locks-1} (sorted lock keys); request_scope and request_id; web_form_key_id.

    Columns: config_version, form_key_found, form_key_revoked_at, replay_lead_id,
    replay_touch_lead_id, replay_matched_on (each NULL when not asked for)."""
    with_key = (
        "WITH form_key AS (SELECT revoked_at FROM web_form_keys WHERE id = :web_form_key_id FOR SHARE) "
        if web_form_key
        else ""
    )
    key_columns = (
        "EXISTS (SELECT FROM form_key) AS form_key_found, (SELECT revoked_at FROM form_key) AS form_key_revoked_at"
        if web_form_key
        else "NULL::boolean AS form_key_found, NULL::timestamptz AS form_key_revoked_at"
    )
    # PostgreSQL evaluates the select list left to right: the key's share lock, then the locks.
    lock_columns = "".join(f", pg_advisory_xact_lock(hashtextextended(:k{i}, 0)) AS lock{i}" for i in range(locks))
    if request_id:
        replay = (
            ", (SELECT leads.id FROM leads WHERE leads.request_scope = :request_scope "
            "AND leads.request_id = :request_id) AS replay_lead_id, "
            "touch.lead_id AS replay_touch_lead_id, touch.matched_on AS replay_matched_on "
        )
        replay_join = (
            "LEFT OUTER JOIN lead_touches AS touch ON touch.request_scope = :request_scope "
            "AND touch.request_id = :request_id "
        )
    else:
        replay = (
            ", NULL::varchar AS replay_lead_id, NULL::varchar AS replay_touch_lead_id, "
            "NULL::varchar AS replay_matched_on "
        )
        replay_join = ""
    return text(
        f"{with_key}SELECT {key_columns}{lock_columns}, version.version AS config_version{replay}"
        "FROM (SELECT 1) AS one "
        "LEFT OUTER JOIN capture_config_version AS version ON version.id = 1 "
        f"{replay_join}"
    )


# ---------------------------------------------------------------- 2. the person


@cache
def person(*, phone: bool, email: bool, request_id: bool) -> TextClause:
    """Bind phone_number and/or email; request_scope and request_id. No row: a new person.

    Columns: id, merged_into_id, matched_on of the oldest lead with the phone number (first) or
    the e-mail; live_id and the lead's TOUCHED_LEAD_FIELDS, rep_id, team_id, touch_count when it
    is live (its row then locked FOR NO KEY UPDATE, as a touch locks it); request_id_taken."""
    branches = [
        f"(SELECT leads.id, leads.merged_into_id, '{column}'::varchar AS matched_on, {rank} AS rank FROM leads "
        # The literal '' (not a bind parameter) lets even a generic plan use the partial index.
        f"WHERE leads.{column} = :{column} AND leads.{column} <> '' "
        "ORDER BY leads.created_at, leads.id LIMIT 1)"
        for column, rank, wanted in (("phone_number", 1, phone), ("email", 2, email))
        if wanted
    ]
    fields = ", ".join(f"leads.{name}" for name in TOUCHED_LEAD_FIELDS)
    taken = (
        "(EXISTS (SELECT FROM leads WHERE leads.request_scope = :request_scope AND leads.request_id = :request_id) "
        "OR EXISTS (SELECT FROM lead_touches WHERE lead_touches.request_scope = :request_scope "
        "AND lead_touches.request_id = :request_id))"
        if request_id
        else "false"
    )
    return text(
        f"WITH hit AS (SELECT found.id, found.merged_into_id, found.matched_on FROM ({' UNION ALL '.join(branches)}) "
        "AS found ORDER BY found.rank LIMIT 1), "
        f"live AS (SELECT leads.id, {fields}, leads.rep_id, leads.team_id, leads.touch_count "
        "FROM leads JOIN hit ON leads.id = hit.id WHERE leads.merged_into_id IS NULL FOR NO KEY UPDATE OF leads) "
        "SELECT hit.id, hit.merged_into_id, hit.matched_on, live.id AS live_id, "
        + ", ".join(f"live.{name}" for name in TOUCHED_LEAD_FIELDS)
        + f", live.rep_id, live.team_id, live.touch_count, {taken} AS request_id_taken "
        "FROM hit LEFT OUTER JOIN live ON true"
    )


# ---------------------------------------------------------------- 3a. a returning person: the touch


@cache
def touch(filled: frozenset[str]) -> TextualSelect:
    """Insert the touch (nothing when its request id is taken) and, only then, update the lead:
    touch_count, missing_fields and the filled fields (bound by their names); the lead view of the
    updated lead, no row when the request id was taken.

    Bind touch_id, lead_id, request_scope, request_id, source, campaign, campaign_id,
    web_form_key_id, matched_on, touched_at, touch_count, missing_fields."""
    sets = ", ".join(f"{name} = :{name}" for name in ("touch_count", "missing_fields", *sorted(filled)))
    returning = ", ".join(f"leads.{name}" for name in _LEAD_COLUMNS)
    statement = text(
        "WITH touch AS (INSERT INTO lead_touches (id, lead_id, request_scope, request_id, source, campaign, "
        "campaign_id, web_form_key_id, matched_on, touched_at) VALUES (:touch_id, :lead_id, :request_scope, "
        ":request_id, :source, :campaign, :campaign_id, :web_form_key_id, :matched_on, :touched_at) "
        "ON CONFLICT ON CONSTRAINT uq_lead_touches_request DO NOTHING RETURNING lead_touches.id), "
        f"touched AS (UPDATE leads SET {sets} WHERE leads.id = :lead_id AND EXISTS (SELECT FROM touch) "
        f"RETURNING {returning}) " + _lead_view_select("touched")
    ).bindparams(bindparam("missing_fields", type_=ARRAY(String)))
    return _lead_view_columns(statement, deal_id=String)


# ---------------------------------------------------------------- 3b. a new person


def _name_branch(column: str) -> str:
    """The newest live leads other than lead_id with this name key: one index range read backwards
    (as crm_leads.duplicates.queries.name_candidates_query)."""
    return (
        f"(SELECT leads.id, leads.name_key, leads.name_compact, leads.name_skeleton, leads.city, leads.created_at "
        f"FROM leads WHERE leads.{column} = :{column} AND leads.{column} <> '' AND leads.id != :lead_id "
        f"AND leads.merged_into_id IS NULL ORDER BY leads.{column}, leads.created_at DESC, leads.id DESC "
        f"LIMIT {MAX_NAME_CANDIDATES})"
    )


@cache
def turn_and_look_alikes(name_columns: tuple[str, ...], *, turn: bool) -> TextualSelect:
    """The team's round-robin turn (bind team_id; NULL when not asked for) and the newest live leads
    sharing one of the name keys (bind the name_columns and lead_id), newest first: one row per
    look-alike, or one row without one (id NULL) when there is none."""
    # Materialized: nextval runs once, however many look-alike rows follow.
    turn_cte = (
        "WITH turn AS MATERIALIZED (SELECT nextval(('routing_rr_' || md5(:team_id))::regclass) AS turn) "
        if turn
        else "WITH turn AS MATERIALIZED (SELECT NULL::bigint AS turn) "
    )
    if name_columns:
        found = (
            "LEFT OUTER JOIN (SELECT found.id, found.name_key, found.name_compact, found.name_skeleton, "
            f"found.city, found.created_at FROM ({' UNION '.join(_name_branch(c) for c in name_columns)}) AS found "
            f"ORDER BY found.created_at DESC, found.id DESC LIMIT {MAX_NAME_CANDIDATES}) AS found ON true "
            "ORDER BY found.created_at DESC, found.id DESC"
        )
        columns = "found.id, found.name_key, found.name_compact, found.name_skeleton, found.city"
    else:
        found = ""
        columns = "NULL::varchar AS id, NULL::varchar AS name_key, NULL::varchar AS name_compact, " + (
            "NULL::varchar AS name_skeleton, NULL::varchar AS city"
        )
    return text(f"{turn_cte}SELECT turn.turn, {columns} FROM turn {found}").columns(
        turn=Integer, id=String, name_key=String, name_compact=String, name_skeleton=String, city=String
    )


@cache
def insert_lead(*, pairs: bool) -> TextualSelect:
    """Insert the lead (INSERTED_LEAD_COLUMNS bound by name; nothing when its request id is taken)
    and, with pairs, its possible-duplicate pairs (bind pair_ids, pair_other_ids, pair_scores and
    pair_reasons, the reasons of each comma-joined), in that order; the lead's row and the other
    leads of the pairs recorded (new_pairs), no row when the request id was taken."""
    names = ", ".join(INSERTED_LEAD_COLUMNS)
    values = ", ".join(f":{name}" for name in INSERTED_LEAD_COLUMNS)
    returning = ", ".join(f"leads.{name}" for name in _LEAD_COLUMNS)
    lead_cte = (
        f"WITH lead AS (INSERT INTO leads ({names}) VALUES ({values}) "
        f"ON CONFLICT ON CONSTRAINT uq_leads_request DO NOTHING RETURNING {returning})"
    )
    lead_columns = ", ".join(f"lead.{name}" for name in _LEAD_COLUMNS)
    if pairs:
        statement = text(
            f"{lead_cte}, pairs AS (INSERT INTO possible_duplicates (id, lead_id, other_lead_id, score, reasons, "
            "status, created_at) SELECT p.id, lead.id, p.other_lead_id, p.score, string_to_array(p.reasons, ','), "
            "'open', clock_timestamp() FROM lead, unnest(CAST(:pair_ids AS varchar[]), "
            "CAST(:pair_other_ids AS varchar[]), CAST(:pair_scores AS integer[]), CAST(:pair_reasons AS varchar[])) "
            "WITH ORDINALITY AS p(id, other_lead_id, score, reasons, position) ORDER BY p.position "
            "ON CONFLICT ON CONSTRAINT uq_possible_duplicates_pair DO NOTHING "
            "RETURNING possible_duplicates.other_lead_id) "
            f"SELECT {lead_columns}, ARRAY(SELECT pairs.other_lead_id FROM pairs) AS new_pairs FROM lead"
        )
    else:
        statement = text(f"{lead_cte} SELECT {lead_columns}, ARRAY[]::varchar[] AS new_pairs FROM lead")
    statement = statement.bindparams(
        bindparam("routing_explanation", type_=JSONB), bindparam("missing_fields", type_=ARRAY(String))
    )
    return statement.columns(*[_COLUMN[n] for n in _LEAD_COLUMNS], new_pairs=ARRAY(String))
