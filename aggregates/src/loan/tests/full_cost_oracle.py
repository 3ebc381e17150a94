#!/usr/bin/env python3
"""Independent computation of the full-cost (ПСК) worked examples in `aggregates/src/loan/tests.rs`.

Written from the rules in the docs of `aggregates/src/loan/full_cost.rs` (353-FZ art. 6), not from
the Rust code. Schedules come from `actual_days_oracle.py` (annuity) or `differentiated()` below;
the equation is solved by bisection in Python's `decimal` at 60 significant digits:

    flows: -principal on the lending day, +each instalment's total on its due date
    q_k = largest m with lending day + m months (clamped to month end) <= day of flow k
    e_k = (day of flow k - (lending day + q_k months)) in days * 12 / 365
    sum flow_k / ((1 + e_k*i) * (1 + i)**q_k) = 0,  ПСК = i * 12 * 100 to 3 places, half up
    in money: sum of the flows (what is paid above the principal)

Run: python3 aggregates/src/loan/tests/full_cost_oracle.py
"""
import os
import sys
from datetime import date
from decimal import Decimal, ROUND_HALF_UP, getcontext
from fractions import Fraction

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from actual_days_oracle import add_months, interest, kopecks, schedule  # noqa: E402

getcontext().prec = 60


def periods(lent_on, day):
    q = 0
    while add_months(lent_on, q + 1) <= day:
        q += 1
    days = (day - add_months(lent_on, q)).days
    return q, Decimal(days * 12) / Decimal(365)


def full_cost(principal, lent_on, rows):
    flows = [(-Decimal(principal), 0, Decimal(0))]
    for (_, due, _, _, total, _) in rows:
        q, e = periods(lent_on, due)
        flows.append((Decimal(total), q, e))

    def pv(i):
        return sum(a / ((1 + e * i) * (1 + i) ** q) for a, q, e in flows)

    money = sum(a for a, _, _ in flows)
    if pv(Decimal(0)) <= 0:
        return Decimal("0.000"), money
    low, high = Decimal(0), Decimal(1)
    for _ in range(200):
        mid = (low + high) / 2
        if pv(mid) > 0:
            low = mid
        else:
            high = mid
    percent = (low * 1200).quantize(Decimal("0.001"), rounding=ROUND_HALF_UP)
    return percent, money


def differentiated(principal, rate, n, lent_on, first_due):
    part = kopecks(Fraction(principal) / n)
    balance, start, rows = Decimal(principal), lent_on, []
    for k in range(1, n + 1):
        due = add_months(first_due, k - 1)
        i = interest(balance, rate, start, due)
        p = balance if k == n else min(part, balance)
        balance -= p
        rows.append((k, due, p, i, p + i, balance))
        start = due
    return rows


def monthly_twelfth(principal, rate, n, first_due):
    # The legacy rule: every period's interest is balance * rate / 1200.
    r = Fraction(rate) / 1200
    g = (1 + r) ** n
    a = kopecks(Fraction(principal) * r * g / (g - 1))
    balance, rows = Decimal(principal), []
    for k in range(1, n + 1):
        i = kopecks(Fraction(balance) * r)
        p = balance if k == n else min(max(a - i, Decimal(0)), balance)
        balance -= p
        rows.append((k, add_months(first_due, k - 1), p, i, p + i, balance))
    return rows


def show(title, principal, lent_on, rows):
    percent, money = full_cost(principal, lent_on, rows)
    print(f"{title}: {percent} % a year, {money} in money")


if __name__ == "__main__":
    P, R = "8497359.60", "18.9"
    show("10-day first period", P, date(2026, 11, 22),
         schedule(P, R, 60, date(2026, 11, 22), date(2026, 12, 2))[1])
    show("62-day first period", P, date(2026, 12, 1),
         schedule(P, R, 60, date(2026, 12, 1), date(2027, 2, 1))[1])
    show("one-month first period", P, date(2026, 12, 15),
         schedule(P, R, 60, date(2026, 12, 15), date(2027, 1, 15))[1])
    show("usual offer (39 days)", "1275000.00", date(2026, 11, 22),
         schedule("1275000.00", "22.9", 60, date(2026, 11, 22), date(2026, 12, 31))[1])
    show("differentiated, 10-day first period", P, date(2026, 11, 22),
         differentiated(P, R, 60, date(2026, 11, 22), date(2026, 12, 2)))
    show("monthly 1/12, regular months", "1275000.00", date(2026, 12, 15),
         monthly_twelfth("1275000.00", "22.9", 60, date(2027, 1, 15)))
    show("lent on 31 January", "1000000.00", date(2027, 1, 31),
         schedule("1000000.00", "27.9", 84, date(2027, 1, 31), date(2027, 2, 28))[1])
    show("zero rate", "600000.00", date(2026, 12, 15),
         schedule("600000.00", "0", 12, date(2026, 12, 15), date(2027, 1, 15))[1])
