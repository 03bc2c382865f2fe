// finql from a TypeScript front end, as one is usually built: Apollo Client 4 with automatic
// persisted queries (hashes sent as GET, so shared caches can keep market data), its
// normalised cache keyed by `id`, and graphql-ws for live quotes; types from graphql-codegen.
//
// Runs the shared operations (../operations.graphql) against a running finql and checks what a
// front end relies on; exits non-zero on the first surprise.
//
//   FINQL_URL=http://127.0.0.1:8000/graphql npm start
import assert from "node:assert/strict";
import { createHash, randomUUID } from "node:crypto";

import { ApolloClient, ApolloLink, HttpLink, InMemoryCache } from "@apollo/client";
import { SetContextLink } from "@apollo/client/link/context";
import { PersistedQueryLink } from "@apollo/client/link/persisted-queries";
import { GraphQLWsLink } from "@apollo/client/link/subscriptions";
import { getMainDefinition } from "@apollo/client/utilities";
import { createClient } from "graphql-ws";
import WebSocket from "ws";

import {
  CreateTransactionDocument,
  LiveQuotesDocument,
  QuotesDocument,
  SecurityWithFundamentalsDocument,
  SignUpDocument,
  TransactionsDocument,
  type LiveQuotesSubscription,
} from "./gql/graphql.js";

const HTTP_URL = process.env.FINQL_URL ?? "http://127.0.0.1:8000/graphql";
const WS_URL = HTTP_URL.replace(/^http/, "ws");
/** How long the live quote may take (the simulated market ticks crypto several times a second). */
const LIVE_TIMEOUT_MS = 15_000;

/** The types `node(id:)` may answer, as the README documents for Apollo. */
const NODE_TYPES = ["User", "Transaction", "Security", "Quote"];

/** What went over HTTP, to check APQ did what it promises. */
interface Sent {
  method: string;
  hasQuery: boolean;
  persisted: boolean;
}

function client(token: () => string | undefined, sent: Sent[]) {
  const recordingFetch: typeof fetch = async (input, init) => {
    const url = new URL(typeof input === "string" ? input : input instanceof URL ? input : input.url);
    const method = init?.method ?? "GET";
    const body = typeof init?.body === "string" ? JSON.parse(init.body) : undefined;
    const hasQuery = method === "GET" ? url.searchParams.has("query") : typeof body?.query === "string";
    const persisted =
      method === "GET" ? url.searchParams.has("extensions") : body?.extensions?.persistedQuery !== undefined;
    sent.push({ method, hasQuery, persisted });
    return fetch(input, init);
  };
  const auth = new SetContextLink((prev) => {
    const t = token();
    return t ? { headers: { ...prev.headers, Authorization: `Bearer ${t}` } } : {};
  });
  const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");
  // Queries go as `GET ?extensions={persistedQuery}`: a hash the server knows answers at once,
  // an unknown one answers PERSISTED_QUERY_NOT_FOUND and the link resends it with its text.
  const http = ApolloLink.from([
    auth,
    new PersistedQueryLink({ sha256, useGETForHashedQueries: true }),
    new HttpLink({ uri: HTTP_URL, fetch: recordingFetch }),
  ]);
  const ws = new GraphQLWsLink(
    createClient({
      url: WS_URL,
      webSocketImpl: WebSocket,
      connectionParams: () => {
        const t = token();
        return t ? { Authorization: `Bearer ${t}` } : {};
      },
    }),
  );
  const link = ApolloLink.split(
    ({ query }) => {
      const def = getMainDefinition(query);
      return def.kind === "OperationDefinition" && def.operation === "subscription";
    },
    ws,
    http,
  );
  const cache = new InMemoryCache({ possibleTypes: { Node: NODE_TYPES } });
  return { apollo: new ApolloClient({ link, cache }), cache, ws };
}

async function main() {
  let token: string | undefined;
  const sent: Sent[] = [];
  const { apollo, cache, ws } = client(() => token, sent);

  // Sign up: the tokens, and the user's global id.
  const email = `ts-${randomUUID()}@example.com`;
  const signUp = await apollo.mutate({
    mutation: SignUpDocument,
    variables: { input: { email, password: "correct horse battery", fullName: "TypeScript Example" } },
  });
  assert.ok(signUp.data, "signUp answered no data");
  token = signUp.data.signUp.accessToken;
  assert.equal(signUp.data.signUp.user.email, email);
  console.log(`signed up ${email} (${signUp.data.signUp.user.id})`);

  // A transaction: the amount comes back as the exact decimal string, two digits for USD.
  const created = await apollo.mutate({
    mutation: CreateTransactionDocument,
    variables: {
      input: { amount: "12.3", kind: "DEBIT", currency: "USD", category: "coffee", occurredAt: "2026-11-02T10:00:00Z" },
    },
  });
  assert.ok(created.data);
  const tx = created.data.createTransaction;
  assert.equal(tx.amount, "12.30");
  assert.equal(tx.occurredAt, "2026-11-02T10:00:00.000000Z");
  console.log(`created transaction ${tx.id}: ${tx.amount} ${tx.currency}`);

  // A page of transactions.
  const page = await apollo.query({ query: TransactionsDocument, variables: { first: 10 } });
  assert.ok(page.data);
  assert.equal(page.data.transactions.totalCount, 1);
  assert.deepEqual(
    page.data.transactions.nodes.map((t) => t.id),
    [tx.id],
  );

  // Quotes, then a security with its quote and fundamentals: the quote in the second answer is
  // the same cache entry as the first's (same `__typename` and `id`), not a copy.
  const symbols = ["AAPL.US", "CRYPTO:BTCUSDT"];
  const quotes = await apollo.query({ query: QuotesDocument, variables: { symbols } });
  assert.ok(quotes.data);
  const [aapl, btc] = quotes.data.quotes;
  assert.ok(aapl && btc, "a quote is null");
  assert.match(aapl.last, /^\d+\.\d+$/);
  const to = new Date().toISOString().slice(0, 10);
  const from = new Date(Date.now() - 30 * 86_400_000).toISOString().slice(0, 10);
  const security = await apollo.query({
    query: SecurityWithFundamentalsDocument,
    variables: { symbol: "aapl.us", from, to },
  });
  const sec = security.data?.security;
  assert.ok(sec, "security is null");
  assert.equal(sec.symbol, "AAPL.US");
  assert.equal(sec.quote?.id, aapl.id, "a security's quote has its own id");
  assert.ok((sec.fundamentals?.nodes.length ?? 0) > 0, "no fundamentals");
  const cached = Object.keys(cache.extract()).filter((key) => key.startsWith("Quote:"));
  assert.deepEqual(cached.sort(), [`Quote:${aapl.id}`, `Quote:${btc.id}`].sort());
  console.log(`${sec.symbol} ${sec.name}: last ${sec.quote?.last}, P/E ${sec.fundamentals?.nodes[0]?.pe}`);

  // APQ: every query went as a hash; a second client (an empty cache, as after a page reload)
  // sends the same query as a hash alone, and finql, which registered it, answers at once.
  assert.ok(sent.every((s) => s.persisted), "a request went without its hash");
  assert.ok(sent.some((s) => s.method === "GET" && !s.hasQuery), "no query went as a bare hash");
  const reloaded: Sent[] = [];
  const second = client(() => token, reloaded);
  const again = await second.apollo.query({ query: QuotesDocument, variables: { symbols } });
  assert.equal(again.data?.quotes[0]?.id, aapl.id);
  assert.deepEqual(reloaded, [{ method: "GET", hasQuery: false, persisted: true }]);
  second.apollo.stop();

  // A live quote over graphql-ws: the update lands on the entry the query made, so a quote
  // already on screen moves without a refetch.
  const live = await new Promise<LiveQuotesSubscription["quotes"]>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("no live quote in time")), LIVE_TIMEOUT_MS);
    const subscription = apollo
      .subscribe({ query: LiveQuotesDocument, variables: { symbols: ["CRYPTO:BTCUSDT"] } })
      .subscribe({
        next: (result) => {
          if (result.error) return reject(result.error);
          if (!result.data) return;
          clearTimeout(timer);
          subscription.unsubscribe();
          resolve(result.data.quotes);
        },
        error: reject,
      });
  });
  assert.equal(live.id, btc.id, "a live quote has another id than the queried one");
  const onScreen = apollo.readQuery({ query: QuotesDocument, variables: { symbols } });
  assert.equal(onScreen?.quotes[1]?.timestamp, live.timestamp, "the live update did not reach the cache");
  console.log(`live ${live.symbol}: ${live.last} at ${live.timestamp}`);

  apollo.stop();
  await ws.client.dispose();
  console.log("typescript example: all operations ok");
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
