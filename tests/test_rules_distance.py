"""A price distance (services.rules.distance) as the operator and the settings write it: a
percentage of the reference price or price points, at least 0 and below 1000 % or MAX_NUMBER."""

from __future__ import annotations

import math
import re

import pytest

from services.rules.bounds import MAX_NUMBER
from services.rules.distance import Distance, parse_distance


@pytest.mark.parametrize(("raw", "distance"), [
    ("0.5%", Distance(0.005, "pct")), (" 2% ", Distance(0.02, "pct")), ("0%", Distance(0.0, "pct")),
    ("999.99%", Distance(9.9999, "pct")),
    (25, Distance(25.0, "points")), (0.5, Distance(0.5, "points")), ("25", Distance(25.0, "points")),
    (0, Distance(0.0, "points")), (MAX_NUMBER * 0.999, Distance(MAX_NUMBER * 0.999, "points")),
])
def test_a_percentage_is_of_the_reference_price_and_a_number_is_points(raw, distance):
    assert parse_distance(raw) == distance


def test_a_distance_is_taken_as_it_is():
    d = Distance(0.01, "pct")
    assert parse_distance(d) is d


@pytest.mark.parametrize(("raw", "words"), [
    ("1000%", "below 1000%"), (1e12, f"below {MAX_NUMBER:g} points"), ("-0.1%", "at least 0"), (-1, "at least 0"),
    ("nan", "at least 0"), (math.inf, "below"), ("abc", "a percentage like"), ("%", "a percentage like"),
    (True, "a percentage like"), (None, "a percentage like"), ([1], "a percentage like"),
])
def test_a_distance_out_of_bounds_or_of_another_grammar_is_refused(raw, words):
    with pytest.raises(ValueError, match=re.escape(words)):
        parse_distance(raw)


def test_the_amount_is_a_fraction_of_the_reference_or_the_points_themselves():
    assert Distance(0.02, "pct").amount(200.0) == pytest.approx(4.0)
    assert Distance(3.0, "points").amount(200.0) == 3.0


def test_a_distance_is_shown_as_the_operator_writes_it():
    assert (str(Distance(0.005, "pct")), str(Distance(25.0, "points"))) == ("0.5%", "25")
