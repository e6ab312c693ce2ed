"""The explainer registry is strict: a second explainer of one name or one order, or a malformed name, is
refused when its module is imported; an unknown kind is an error, never a silent miss."""

from __future__ import annotations

import pytest

from aelab.doctor.explainers import EXPLAINERS, explainer, get
from aelab.errors import RegistryError


def _nothing(ctx: object) -> list[object]:
    return []


def test_the_registry_is_complete_and_in_order() -> None:
    orders = [e.order for e in EXPLAINERS.values()]
    assert orders == sorted(orders) and len(set(orders)) == len(orders)
    assert next(iter(EXPLAINERS)) == "missing_batch_dim"  # it explains a wrong Linear downstream: asked first
    on_error = [e.name for e in EXPLAINERS.values() if e.on_error]
    assert on_error[-1] == "other_error"  # the catch-all is asked last
    assert all(e.explain.__doc__ or e.doc for e in EXPLAINERS.values())


@pytest.mark.parametrize(("name", "order", "message"), [
    ("view_size", 999, "registered twice"),
    ("brand_new", EXPLAINERS["cat_size"].order, "both have order"),
    ("Not-Snake", 998, "snake_case"),
])
def test_a_bad_registration_raises(name: str, order: int, message: str) -> None:
    before = dict(EXPLAINERS)
    with pytest.raises(RegistryError, match=message):
        explainer(name, "doc", order=order)(_nothing)  # type: ignore[arg-type]
    assert before == EXPLAINERS


def test_an_unknown_kind_raises() -> None:
    assert get("cat_size").name == "cat_size"
    with pytest.raises(RegistryError, match="no explainer of kind 'no_such_kind'"):
        get("no_such_kind")
