"""finql from Python: the typed client ariadne-codegen generates, and gql 4 with its defaults.

Runs the shared operations (../operations.graphql) against a running finql and checks what a
Python caller relies on: money as ``decimal.Decimal`` both ways, times as aware UTC
``datetime``, days as ``date``, and a live quote over WebSocket from both clients. Exits
non-zero on the first surprise.

    FINQL_URL=http://127.0.0.1:8000/graphql python main.py
"""

from __future__ import annotations

import asyncio
import os
import uuid
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from gql import Client as GqlClient
from gql import gql
from gql.transport.websockets import WebsocketsTransport

from finql_client import Client, CreateTransactionInput, SignUpInput, TransactionKind

HTTP_URL = os.environ.get("FINQL_URL", "http://127.0.0.1:8000/graphql")
WS_URL = "ws" + HTTP_URL.removeprefix("http")
# The simulated market ticks crypto several times a second.
LIVE_TIMEOUT_SECS = 15
SYMBOLS = ["AAPL.US", "CRYPTO:BTCUSDT"]


async def first_live_quote_with_gql(token: str) -> dict[str, Any]:
    """One live quote through gql's default WebSocket transport, as its docs set it up."""
    transport = WebsocketsTransport(url=WS_URL, init_payload={"Authorization": f"Bearer {token}"})
    async with GqlClient(transport=transport) as session:
        document = gql("subscription { quotes(symbols: [\"CRYPTO:BTCUSDT\"]) { id symbol last timestamp } }")
        async for result in session.subscribe(document):
            quote: dict[str, Any] = result["quotes"]
            return quote
    raise AssertionError("gql's subscription ended without a quote")


async def main() -> None:
    anonymous = Client(url=HTTP_URL)
    email = f"py-{uuid.uuid4()}@example.com"
    signed_up = await anonymous.sign_up(
        SignUpInput(email=email, password="correct horse battery", fullName="Python Example")
    )
    token = signed_up.sign_up.access_token
    assert signed_up.sign_up.user.email == email
    assert signed_up.sign_up.access_token_expires_at.tzinfo is not None
    print(f"signed up {email} ({signed_up.sign_up.user.id})")

    headers = {"Authorization": f"Bearer {token}"}
    client = Client(
        url=HTTP_URL,
        headers=headers,
        ws_url=WS_URL,
        ws_connection_init_payload=headers,
    )

    # Money goes out as a decimal string and comes back exact, with the currency's digits.
    occurred = datetime(2026, 11, 2, 10, 0, tzinfo=timezone.utc)
    created = (
        await client.create_transaction(
            CreateTransactionInput(
                amount=Decimal("12.3"),
                kind=TransactionKind.DEBIT,
                currency="USD",
                category="coffee",
                occurredAt=occurred,
            )
        )
    ).create_transaction
    assert created.amount == Decimal("12.30") and str(created.amount) == "12.30", created.amount
    assert created.occurred_at == occurred
    print(f"created transaction {created.id}: {created.amount} {created.currency}")

    page = (await client.transactions(first=10)).transactions
    assert page.total_count == 1
    assert [t.id for t in page.nodes] == [created.id]

    quotes = (await client.quotes(symbols=SYMBOLS)).quotes
    aapl, btc = quotes
    assert aapl is not None and btc is not None, quotes
    assert isinstance(aapl.last, Decimal) and aapl.last > 0

    today = datetime.now(timezone.utc).date()
    security = (
        await client.security_with_fundamentals(
            symbol="aapl.us", from_=today - timedelta(days=30), to=today
        )
    ).security
    assert security is not None
    assert security.symbol == "AAPL.US"
    assert security.quote is not None and security.quote.id == aapl.id
    assert isinstance(security.lot_size, Decimal)
    assert security.fundamentals is not None and security.fundamentals.nodes
    point = security.fundamentals.nodes[0]
    assert isinstance(point.date, date)
    print(f"{security.symbol} {security.name}: last {security.quote.last}, P/E {point.pe}")

    # A live quote through the generated client (graphql-transport-ws)…
    async def first_generated() -> Any:
        async for update in client.live_quotes(symbols=["CRYPTO:BTCUSDT"]):
            return update.quotes
        raise AssertionError("the subscription ended without a quote")

    live = await asyncio.wait_for(first_generated(), LIVE_TIMEOUT_SECS)
    assert live.id == btc.id and isinstance(live.last, Decimal)
    print(f"live {live.symbol}: {live.last} at {live.timestamp.isoformat()}")

    # …and through gql 4 with its defaults (it negotiates the subprotocol from the header).
    quote = await asyncio.wait_for(first_live_quote_with_gql(token), LIVE_TIMEOUT_SECS)
    assert quote["id"] == btc.id and Decimal(quote["last"]) > 0, quote
    print(f"live over gql {quote['symbol']}: {quote['last']}")

    print("python example: all operations ok")


if __name__ == "__main__":
    asyncio.run(main())
