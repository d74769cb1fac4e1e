import pytest

from crm_kit.errors import FailedPrecondition, InvalidArgument
from crm_sales import domain

pytestmark = pytest.mark.unit


def test_close_rules() -> None:
    items = [domain.Item("A", "a", 2, 100, "ILS"), domain.Item("B", "b", 1, 50, "ils")]
    assert domain.validate_close(domain.DealStatus.OPEN, True, items) == (250, "ILS")
    assert domain.validate_close(domain.DealStatus.OPEN, False, []) == (0, "")
    with pytest.raises(FailedPrecondition):
        domain.validate_close(domain.DealStatus.WON, True, items)
    with pytest.raises(InvalidArgument):
        domain.validate_close(domain.DealStatus.OPEN, True, [])
    with pytest.raises(InvalidArgument) as mixed:
        domain.validate_close(domain.DealStatus.OPEN, True, [*items, domain.Item("C", "c", 1, 1, "USD")])
    assert ("items", "all items must share one currency") in mixed.value.field_violations


def test_each_bad_item_field_is_named() -> None:
    bad = domain.Item(" ", "", 0, -1, "SHEKEL")
    with pytest.raises(InvalidArgument) as err:
        domain.validate_close(domain.DealStatus.OPEN, True, [bad])
    assert [field for field, _ in err.value.field_violations] == [
        "items[0].sku",
        "items[0].quantity",
        "items[0].unit_price.amount_minor",
        "items[0].unit_price.currency_code",
    ]


def test_a_new_deal_needs_its_ids_and_a_title_and_is_trimmed() -> None:
    opened = domain.validate_new_deal(domain.NewDeal(" d-1 ", "l-1", "  ספה " + "x" * 300, "rep", "team", "tv", ""))
    assert opened.deal_id == "d-1" and len(opened.title) == domain.TITLE_MAX and opened.title.startswith("ספה")
    with pytest.raises(InvalidArgument) as err:
        domain.validate_new_deal(domain.NewDeal("", " ", "", "", "", "", ""))
    assert [field for field, _ in err.value.field_violations] == ["deal_id", "lead_id", "title"]


def test_a_clean_item_is_trimmed_with_an_upper_case_currency() -> None:
    assert domain.clean_item(domain.Item(" SOFA ", " ספה ", 1, 100, "ils")) == domain.Item("SOFA", "ספה", 1, 100, "ILS")


def test_a_merge_moves_a_deal_only_from_the_lead_it_merged_away() -> None:
    from datetime import UTC, datetime, timedelta

    since = datetime(2026, 12, 5, 12, tzinfo=UTC)
    order = domain.merge_order
    # On the merged lead: move it.
    assert order(deal_lead="a", deal_lead_since=since, merged_lead="a", merged_at=since) is domain.MergeOrder.APPLY
    # On another lead since after the merge (a copy that read the merged conversion): already in it.
    after = since + timedelta(seconds=1)
    assert order(deal_lead="c", deal_lead_since=after, merged_lead="a", merged_at=since) is domain.MergeOrder.DONE
    # On another lead since before the merge: an earlier merge has not arrived yet.
    before = since - timedelta(seconds=1)
    assert order(deal_lead="a", deal_lead_since=before, merged_lead="b", merged_at=since) is domain.MergeOrder.WAIT
    # No deal yet: its opening has not arrived.
    assert order(deal_lead=None, deal_lead_since=None, merged_lead="a", merged_at=since) is domain.MergeOrder.WAIT
