#!/usr/bin/env python3
"""Independent computation of the actual-day worked examples in `aggregates/src/loan/tests.rs`.

Written from the rules in the docs of `aggregates/src/loan/schedule.rs` and `aggregates/src/loan.rs`,
not from the Rust code: exact rational arithmetic (`fractions.Fraction`), one rounding per amount to
kopecks, half away from zero (all amounts here are positive, so ROUND_HALF_UP).

    interest(balance, from, to) = sum over calendar years Y of
        balance * rate/100 * (days of (from, to] in Y) / (366 if Y is leap else 365)
    annuity A = P*r*(1+r)^n / ((1+r)^n - 1), r = rate/1200, exact, rounded to kopecks
    instalment k < n: principal = clamp(A - interest_k, 0, balance), except the first computed
        one, whose principal is clamp(A - balance*rate/1200, 0, balance) (a regular month's);
        the last takes the balance

Run: python3 aggregates/src/loan/tests/actual_days_oracle.py
"""
from datetime import date, timedelta
from decimal import Decimal, ROUND_HALF_UP
from fractions import Fraction
import calendar


def kopecks(value: Fraction) -> Decimal:
    # Decimal of the exact fraction to 40 places, then half-up to 2: exact unless the fraction is
    # within 1e-40 of a half kopeck, which no denominator used here allows.
    q = Decimal(value.numerator) / Decimal(value.denominator)
    return q.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def exact_interest(balance, rate, start: date, end: date) -> Fraction:
    total = Fraction(0)
    day = start + timedelta(days=1)
    while day <= end:  # one day at a time: no cleverness to get wrong
        year_length = 366 if calendar.isleap(day.year) else 365
        total += Fraction(balance) * Fraction(rate) / 100 / year_length
        day += timedelta(days=1)
    return total


def interest(balance, rate, start, end) -> Decimal:
    return kopecks(exact_interest(balance, rate, start, end))


def add_months(d: date, months: int) -> date:
    month = d.month - 1 + months
    year, month = d.year + month // 12, month % 12 + 1
    return date(year, month, min(d.day, calendar.monthrange(year, month)[1]))


def annuity(principal, rate, n) -> Decimal:
    if Fraction(rate) == 0:
        return kopecks(Fraction(principal) / n)
    r = Fraction(rate) / 1200
    g = (1 + r) ** n
    return kopecks(Fraction(principal) * r * g / (g - 1))


def schedule(principal, rate, n, lent_on, first_due, payment=None, first_number=1, count=None):
    payment = annuity(principal, rate, n) if payment is None else Decimal(payment)
    count = n if count is None else count
    balance = Decimal(principal)
    rows = []
    start = lent_on
    for k in range(first_number, first_number + count):
        if balance <= 0:
            break
        due = add_months(first_due, k - 1)
        i = interest(balance, rate, start, due)
        last = k == first_number + count - 1
        # The first instalment computed covers an irregular period: its principal part is a
        # regular month's (payment - a month's interest, balance * rate / 1200); later ones
        # take payment - their interest.
        regular = kopecks(Fraction(balance) * Fraction(rate) / 1200) if k == first_number else i
        p = balance if last else min(max(payment - regular, Decimal(0)), balance)
        balance -= p
        rows.append((k, due, p, i, p + i, balance))
        start = due
    return payment, rows


def show(title, principal, rate, n, lent_on, first_due):
    payment, rows = schedule(principal, rate, n, lent_on, first_due)
    total_interest = sum(r[3] for r in rows)
    print(f"{title}: payment {payment}; first: principal {rows[0][2]} interest {rows[0][3]} "
          f"total {rows[0][4]}; second interest {rows[1][3]}; total interest {total_interest}; "
          f"last {rows[-1][1]} total {rows[-1][4]} principal {rows[-1][2]}")


if __name__ == "__main__":
    P, R = "8497359.60", "18.9"
    # First period of 10 days: disbursed 22 Nov 2026, first due 2 Dec 2026.
    print("10 days:", interest(P, R, date(2026, 11, 22), date(2026, 12, 2)))
    # First period of 62 days across a year end: 1 Dec 2026 -> 1 Feb 2027.
    print("62 days:", interest(P, R, date(2026, 12, 1), date(2027, 2, 1)))
    # Across into a leap year: 15 Dec 2027 -> 15 Jan 2028 (16/365 + 15/366).
    print("leap split:", interest(P, R, date(2027, 12, 15), date(2028, 1, 15)))
    # All of February 2028 (29 days / 366).
    print("leap February:", interest(P, R, date(2028, 1, 31), date(2028, 2, 29)))
    show("schedule 10 days", P, R, 60, date(2026, 11, 22), date(2026, 12, 2))
    show("schedule 62 days", P, R, 60, date(2026, 12, 1), date(2027, 2, 1))
    show("schedule leap", "1275000.00", "22.9", 36, date(2027, 12, 15), date(2028, 1, 15))

    # The usual test loan: 1 275 000.00, 60 months at 22.9 %, decided 22 Nov 2026 (offer), disbursed
    # 30 Nov 2026, first due 31 Dec 2026.
    payment, offer = schedule("1275000.00", "22.9", 60, date(2026, 11, 22), date(2026, 12, 31))
    print("offer: payment", payment, "first", offer[0][2:5], "last", offer[-1][2:5],
          "total interest", sum(r[3] for r in offer))
    _, issued = schedule("1275000.00", "22.9", 60, date(2026, 11, 30), date(2026, 12, 31))
    print("issued: first", issued[0][2:5], "second", issued[1][2:5], "last", issued[-1][2:5],
          "total interest", sum(r[3] for r in issued))
    # Full payoff on 10 Dec 2026 (10 days after the disbursement).
    print("payoff 10 Dec:", Decimal("1275000.00") + interest("1275000.00", "22.9", date(2026, 11, 30), date(2026, 12, 10)))

    # Mid-period partial prepayment: instalment 1 paid on 31 Dec 2026 as issued; 500 000.00 prepaid
    # on 19 Jan 2027, day 19 of the period 31 Dec -> 31 Jan (SHORTEN_TERM: the payment stays).
    balance = issued[0][5]
    accrued = interest(balance, "22.9", date(2026, 12, 31), date(2027, 1, 19))
    principal = Decimal("500000.00") - accrued
    opening = balance - principal
    print("prepayment: balance", balance, "accrued", accrued, "principal", principal, "opening", opening)
    print("  the 1/12 rule forgave on the prepaid 500 000.00:",
          kopecks(Fraction("500000.00") * Fraction("22.9") / 1200 * Fraction(19, 31)))
    # The shortened term: instalments from 2, the first accruing from 19 Jan.
    b, count, start, k = opening, 0, date(2027, 1, 19), 2
    while b > 0 and count < 59:
        due = add_months(date(2026, 12, 31), k - 1)
        if k == 2:
            p = payment - kopecks(Fraction(b) * Fraction("22.9") / 1200)
        else:
            p = payment - interest(b, "22.9", start, due)
        count += 1
        b -= p
        start, k = due, k + 1
    _, rows = schedule(opening, "22.9", 60, date(2027, 1, 19), date(2026, 12, 31), payment=payment,
                       first_number=2, count=count)
    # schedule() starts its first period at `lent_on`, and due dates at instalment 1's anchor.
    print("  shortened: count", count, "next", rows[0][2:5], "last", rows[-1][1], rows[-1][2:5])
    print("  payoff the same day:", balance + accrued, "of which interest", accrued)

    # 300 000.00 prepaid on 10 Jan 2027 after instalment 1 (paid as issued), both recalculations.
    accrued = interest(balance, "22.9", date(2026, 12, 31), date(2027, 1, 10))
    opening = balance - (Decimal("300000.00") - accrued)
    print("300k on 10 Jan: accrued", accrued, "principal", Decimal("300000.00") - accrued, "opening", opening)
    lower = annuity(opening, "22.9", 59)
    _, rows = schedule(opening, "22.9", 59, date(2027, 1, 10), date(2026, 12, 31), payment=lower,
                       first_number=2, count=59)
    print("  LOWER_PAYMENT: payment", lower, "next", rows[0][2:5], "last", rows[-1][1], rows[-1][2:5],
          "count", len(rows))
    b, count, start, k = opening, 0, date(2027, 1, 10), 2
    while b > 0 and count < 59:
        due = add_months(date(2026, 12, 31), k - 1)
        if k == 2:
            p = payment - kopecks(Fraction(b) * Fraction("22.9") / 1200)
        else:
            p = payment - interest(b, "22.9", start, due)
        count += 1
        b -= p
        start, k = due, k + 1
    _, rows = schedule(opening, "22.9", 60, date(2027, 1, 10), date(2026, 12, 31), payment=payment,
                       first_number=2, count=count)
    print("  SHORTEN_TERM: count", count, "next", rows[0][2:5], "last", rows[-1][1], rows[-1][2:5])
