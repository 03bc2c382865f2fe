// The GraphiQL bootstrap (assets/graphiql/finql-graphiql.js), run in Node on the vendored
// React and GraphiQL builds (GraphiQL's own graphql parser), with the browser faked: the
// fetcher GraphiQL would be given is taken from the element the bootstrap renders, and called
// as GraphiQL calls it just after an edit (its `operationName` and `documentAST` still of the
// previous text). `fetch` and graphql-ws's client record which transport was used, with what.
//
//   node --test tests/graphiql/
'use strict';

const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const test = require('node:test');
const vm = require('node:vm');

const ASSETS = path.join(__dirname, '..', '..', 'assets', 'graphiql');

// A DOM that answers everything and does nothing: GraphiQL's bundle touches `document` as it
// loads (CodeMirror's feature checks), and nothing here renders.
function inert() {
  return new Proxy(function () {}, {
    get: (_, key) => (key === Symbol.toPrimitive ? () => '' : inert()),
    apply: () => inert(),
    construct: () => inert(),
  });
}

function loadFetcher() {
  const sent = [];
  const context = {
    console, setTimeout, clearTimeout, setInterval, clearInterval, queueMicrotask,
    TextDecoder, TextEncoder, URL,
    navigator: { userAgent: 'node', platform: 'Linux', vendor: '' },
    location: { href: 'http://localhost:8080/graphiql' },
    document: inert(),
  };
  context.window = context;
  context.self = context;
  vm.createContext(context);
  for (const name of ['react.production.min.js', 'react-dom.production.min.js', 'graphiql.min.js']) {
    const source = fs.readFileSync(path.join(ASSETS, name), 'utf8');
    vm.runInContext(source, context, { filename: name });
  }
  let element;
  context.ReactDOM = { createRoot: () => ({ render: (rendered) => (element = rendered) }) };
  context.graphqlWs = {
    createClient: () => ({
      async *iterate(params) {
        sent.push({ transport: 'ws', params });
        yield { data: {} };
      },
    }),
  };
  context.fetch = async (url, init) => {
    sent.push({ transport: 'http', params: JSON.parse(init.body) });
    return { status: 200, statusText: 'OK', text: async () => '{"data":{}}' };
  };
  // The page, as the bootstrap reads it once GraphiQL is loaded.
  context.document = Object.assign(inert(), {
    currentScript: { dataset: { endpoint: '/graphql' } },
    getElementById: () => ({}),
  });
  vm.runInContext(fs.readFileSync(path.join(ASSETS, 'finql-graphiql.js'), 'utf8'), context);
  assert.ok(element && typeof element.props.fetcher === 'function', 'GraphiQL gets a fetcher');
  const parse = (text) => context.GraphiQL.GraphQL.parse(text);
  return { fetcher: element.props.fetcher, parse, sent };
}

// Calls the fetcher with the current `query` and GraphiQL's view of the `previous` text.
async function run(query, previous, operationName) {
  const { fetcher, parse, sent } = loadFetcher();
  const result = fetcher({ query, operationName }, { headers: {}, documentAST: parse(previous) });
  if (result && typeof result[Symbol.asyncIterator] === 'function') {
    for await (const _ of result);
  } else {
    await result;
  }
  assert.equal(sent.length, 1);
  return sent[0];
}

const QUERY = 'query Q { me { id } }';
const TICKS = '{ ticks(symbol: "AAPL.US") { price } }';

test('a query just turned into a subscription goes over WebSocket', async () => {
  const sent = await run(`subscription Q ${TICKS}`, QUERY, 'Q');
  assert.equal(sent.transport, 'ws');
  assert.equal(sent.params.operationName, 'Q');
});

test('a subscription just turned into a query goes over HTTP', async () => {
  const sent = await run(QUERY, `subscription Q ${TICKS}`, 'Q');
  assert.equal(sent.transport, 'http');
});

test('a renamed operation is sent under its new name', async () => {
  const sent = await run(`subscription Renamed ${TICKS}`, `subscription Old ${TICKS}`, 'Old');
  assert.equal(sent.transport, 'ws');
  assert.equal(sent.params.operationName, 'Renamed');
});

test('of several operations, a renamed one is found at its place', async () => {
  const now = `query A { me { id } }\nsubscription Live ${TICKS}\nquery C { me { email } }`;
  const before = `query A { me { id } }\nsubscription Lve ${TICKS}\nquery C { me { email } }`;
  const sent = await run(now, before, 'Lve');
  assert.equal(sent.transport, 'ws');
  assert.equal(sent.params.operationName, 'Live');
  const kept = await run(now, before, 'C');
  assert.equal(kept.transport, 'http');
  assert.equal(kept.params.operationName, 'C');
});

test('an operation added since the last parse is decided from the text', async () => {
  const sent = await run(`subscription S ${TICKS}\n${QUERY}`, QUERY, 'Q');
  assert.equal(sent.transport, 'http');
  assert.equal(sent.params.operationName, 'Q');
});

test('text that does not parse goes over HTTP as it is', async () => {
  const sent = await run('subscription S { ticks(', `subscription S ${TICKS}`, 'S');
  assert.equal(sent.transport, 'http');
  assert.equal(sent.params.query, 'subscription S { ticks(');
  assert.equal(sent.params.operationName, 'S');
});
