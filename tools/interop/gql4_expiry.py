"""Python's gql 4 against a running finql, with the transport's defaults.

Checks what issue 14 found broken: gql 4 picks the subprotocol from the handshake's
`Sec-WebSocket-Protocol` (read case-sensitively) and must land on `graphql-transport-ws`;
a subscription opened with a short-lived token must end when the token expires.

    pip install 'gql[websockets]>=4,<5'
    FINQL_ACCESS_TOKEN_TTL_SECS=3 FINQL_JWT_LEEWAY_SECS=0 finql serve &
    python tools/interop/gql4_expiry.py http://127.0.0.1:8000/graphql

Exits 0 when both hold.
"""

import asyncio
import json
import sys
import time
import urllib.request

from gql import Client, gql
from gql.transport.websockets import WebsocketsTransport

URL = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8000/graphql"
SIGN_UP = """mutation($e: String!) {
  signUp(input: {email: $e, password: "correct horse battery staple", fullName: "G Q"}) { accessToken }
}"""
QUOTES = 'subscription { quotes(symbols: ["CRYPTO:BTCUSDT"]) { symbol last } }'


def post(query, variables):
    body = json.dumps({"query": query, "variables": variables}).encode()
    request = urllib.request.Request(URL, body, {"content-type": "application/json"})
    return json.load(urllib.request.urlopen(request))


async def main():
    email = f"gql4-{int(time.time() * 1000)}@example.com"
    token = post(SIGN_UP, {"e": email})["data"]["signUp"]["accessToken"]
    ws_url = URL.replace("http", "ws", 1)
    transport = WebsocketsTransport(url=ws_url, init_payload={"Authorization": f"Bearer {token}"})
    started = time.time()
    quotes = 0
    try:
        async with Client(transport=transport) as session:
            print("subprotocol:", transport.subprotocol)
            if transport.subprotocol != "graphql-transport-ws":
                return 1
            async for result in session.subscribe(gql(QUOTES)):
                quotes += 1
                print(f"{time.time() - started:.1f}s", result)
        print("the subscription ended without an error")
        return 1
    except Exception as err:  # the close when the token expires
        print(f"ended after {time.time() - started:.1f}s and {quotes} quotes: {type(err).__name__} {err}")
        return 0 if quotes > 0 else 1


sys.exit(asyncio.run(main()))
