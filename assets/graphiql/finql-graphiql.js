// finql's GraphiQL bootstrap. It is an external file, not an inline <script>,
// so the page runs under a Content-Security-Policy without 'unsafe-inline'.
//
// Needs the globals of the vendored UMD builds loaded before it:
// React, ReactDOM, graphqlWs (graphql-ws) and GraphiQL.
(function () {
  'use strict';

  // The endpoint path comes from the script tag (data-endpoint) and is
  // resolved against the page, so it is always on the page's own origin.
  const script = document.currentScript;
  const endpoint = (script && script.dataset.endpoint) || '/graphql';
  const httpUrl = new URL(endpoint, window.location.href);
  const wsUrl = new URL(httpUrl.href);
  wsUrl.protocol = httpUrl.protocol === 'https:' ? 'wss:' : 'ws:';

  const DEFAULT_QUERY = [
    '# Welcome to finql.',
    '#',
    '# Most operations need an access token:',
    '#  1. Run SignUp below (or Login); copy `accessToken`.',
    '#  2. In the Headers tab below, paste:',
    '#     {"Authorization": "Bearer <accessToken>"}',
    '#  3. Run Record, then Recent and Analytics.',
    '#',
    '# Run with Ctrl-Enter (Cmd-Enter on a Mac); pick the',
    '# operation from the play button menu.',
    '',
    'mutation SignUp {',
    '  signUp(input: {email: "ann@example.com", password: "correct horse battery", fullName: "Ann Lee"}) {',
    '    accessToken',
    '    refreshToken',
    '    user { id email }',
    '  }',
    '}',
    '',
    'mutation Login {',
    '  login(email: "ann@example.com", password: "correct horse battery") { accessToken refreshToken }',
    '}',
    '',
    'mutation Record {',
    '  createTransaction(input: {amount: "2500.89", currency: "USD", kind: CREDIT, category: "salary"}) {',
    '    id amount currency occurredAt',
    '  }',
    '}',
    '',
    'query Recent {',
    '  transactions(first: 10) {',
    '    totalCount',
    '    edges { cursor node { id amount currency kind category occurredAt } }',
    '    pageInfo { hasNextPage endCursor }',
    '  }',
    '}',
    '',
    'query Analytics {',
    '  transactionAnalytics(currency: "USD") {',
    '    count averageAmount totalCredit totalDebit net currencies',
    '    busiestDay { date count }',
    '    byMonth { month count net }',
    '  }',
    '}',
    '',
  ].join('\n');

  // Headers from GraphiQL's headers editor, as a plain object of strings.
  function editorHeaders(opts) {
    const headers = {};
    const given = opts && opts.headers;
    if (given && typeof given === 'object') {
      for (const [name, value] of Object.entries(given)) {
        if (value !== undefined && value !== null) headers[name] = String(value);
      }
    }
    return headers;
  }

  function operationsOf(doc) {
    return doc ? doc.definitions.filter((d) => d.kind === 'OperationDefinition') : [];
  }

  function operationNames(doc) {
    return operationsOf(doc).map((d) => d.name && d.name.value);
  }

  // What to send, decided from the text being sent. GraphiQL gives the fetcher the editor's
  // current text (`params.query`), but its `operationName` and `documentAST` come from a parse
  // it runs 100 ms after each edit: just after an edit they describe the previous text (an
  // operation renamed, a query turned into a subscription), and a subscription went over HTTP
  // or a stale name was sent. So the text is parsed here, and a name the text no longer has is
  // carried over the way GraphiQL itself does once its parse catches up: the operation now at
  // the place the named one was, else the first. Text that does not parse goes over HTTP as
  // it is, for the server to report.
  function plan(params, opts) {
    let doc;
    try {
      doc = GraphiQL.GraphQL.parse(params.query);
    } catch (_) {
      return { params, subscription: false };
    }
    const ops = operationsOf(doc);
    const names = operationNames(doc);
    let name = params.operationName || undefined;
    if (ops.length > 1 && !names.includes(name)) {
      const at = name === undefined ? -1 : operationNames(opts && opts.documentAST).indexOf(name);
      name = (at !== -1 && at < names.length ? names[at] : names[0]) || undefined;
    } else if (ops.length === 1) {
      name = names[0] || undefined;
    }
    const op = ops.length === 1 ? ops[0] : ops.find((d) => d.name && d.name.value === name);
    const subscription = Boolean(op) && op.operation === 'subscription';
    return { params: { ...params, operationName: name }, subscription };
  }

  // Queries and mutations: GraphQL over HTTP, one POST per operation.
  async function httpFetch(params, headers) {
    const response = await fetch(httpUrl, {
      method: 'POST',
      headers: {
        'Content-Type': 'application/json',
        Accept: 'application/graphql-response+json, application/json',
        ...headers,
      },
      body: JSON.stringify(params),
      credentials: 'same-origin',
    });
    const text = await response.text();
    try {
      return JSON.parse(text);
    } catch (_) {
      const detail = text.trim().slice(0, 500) || 'empty, non-JSON response';
      return {
        errors: [{ message: `HTTP ${response.status} ${response.statusText}: ${detail}` }],
      };
    }
  }

  // Subscriptions: graphql-ws (graphql-transport-ws protocol). One lazy client
  // per distinct headers object, reused; the headers go in connection_init.
  const wsClients = new Map();

  function wsClient(headers) {
    const key = JSON.stringify(headers);
    let client = wsClients.get(key);
    if (!client) {
      client = graphqlWs.createClient({ url: wsUrl.href, connectionParams: headers, lazy: true });
      wsClients.set(key, client);
    }
    return client;
  }

  function describeWsError(err) {
    if (Array.isArray(err)) return err; // GraphQL errors from an `error` message
    if (err && typeof err.code === 'number' && 'reason' in err) {
      return [{ message: `WebSocket closed: ${err.code} ${err.reason || ''}`.trim() }];
    }
    if (err instanceof Error) return [{ message: err.message }];
    if (err && err.type === 'error') return [{ message: `WebSocket error connecting to ${wsUrl.href}` }];
    return [{ message: String(err) }];
  }

  // An async iterable, which GraphiQL 3 consumes; stopping the subscription in
  // the UI calls return(), which yield* forwards to graphql-ws's iterator.
  async function* subscribe(params, headers) {
    try {
      yield* wsClient(headers).iterate(params);
    } catch (err) {
      yield { errors: describeWsError(err) };
    }
  }

  function fetcher(params, opts) {
    const headers = editorHeaders(opts);
    const planned = plan(params, opts);
    return planned.subscription ? subscribe(planned.params, headers) : httpFetch(planned.params, headers);
  }

  const root = ReactDOM.createRoot(document.getElementById('graphiql'));
  root.render(
    React.createElement(GraphiQL, {
      fetcher,
      defaultQuery: DEFAULT_QUERY,
      isHeadersEditorEnabled: true,
      shouldPersistHeaders: true,
      defaultEditorToolsVisibility: 'headers',
    }),
  );
})();
