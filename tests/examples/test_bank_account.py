"""The talk's bank register, run as a user would run it."""

from __future__ import annotations

import pytest

from tests.examples._run import run_module

pytestmark = pytest.mark.slow

EXPECTED = """\
Date       Comment                 Change    Balance
7/1/2014   Deposit from 3300  + 10,000.00  10,000.00
7/3/2014   Check 001          -  4,000.00   6,000.00
7/4/2014   ATM Withdrawal     -      3.00   5,997.00
7/11/2014  Check 002          -      5.00   5,992.00
7/12/2014  Deposit from 3301  +  2,000.00   7,992.00
balance: 7,992.00 (derived by applying 5 events)
overdraft rejected: insufficient funds: balance 7,992.00, requested 10,000.00
balance at earlier points, each by recovering up to a sequence number:
  after event 2: 10,000.00
  after event 3: 6,000.00
  after event 4: 5,997.00
  after event 5: 5,992.00
  after event 6: 7,992.00
full replay: balance Decimal('7992.00') after 6 events
"""


def test_register_prints_the_slide_balances_and_rejects_an_overdraft() -> None:
    assert run_module("examples.bank_account").stdout == EXPECTED
