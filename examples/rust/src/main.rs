//! finql from Rust: operations typed by graphql_client's derive, sent with reqwest, and a live
//! quote over graphql-ws-client (graphql-transport-ws on tokio-tungstenite).
//!
//! Runs the shared operations (`../operations.graphql`) against a running finql and checks what
//! a Rust caller relies on: money as `rust_decimal::Decimal` both ways (a JSON string on the
//! wire), times as `chrono::DateTime<Utc>`, days as `NaiveDate`. Exits non-zero on the first
//! surprise.
//!
//! ```sh
//! FINQL_URL=http://127.0.0.1:8000/graphql cargo run
//! ```

use std::time::Duration;

use anyhow::{Context, bail, ensure};
use futures::StreamExt;
use graphql_client::{GraphQLQuery, Response};
use graphql_ws_client::graphql::StreamingOperation;
use tokio_tungstenite::tungstenite::{client::IntoClientRequest, http::HeaderValue};

// The schema's custom scalars, as the derive expects them in scope.
type Decimal = rust_decimal::Decimal;
type DateTime = chrono::DateTime<chrono::Utc>;
type Date = chrono::NaiveDate;
#[allow(dead_code)] // named by the schema, selected by no operation here
type BigInt = u64;

/// How long the live quote may take (the simulated market ticks crypto several times a second).
const LIVE_TIMEOUT: Duration = Duration::from_secs(15);

macro_rules! operation {
    ($name:ident) => {
        #[derive(GraphQLQuery)]
        #[graphql(
            schema_path = "../../schema.graphql",
            query_path = "../operations.graphql",
            response_derives = "Debug, Clone",
            variables_derives = "Debug",
            skip_serializing_none
        )]
        struct $name;
    };
}
operation!(SignUp);
operation!(CreateTransaction);
operation!(Transactions);
operation!(Quotes);
operation!(SecurityWithFundamentals);
operation!(LiveQuotes);

/// One operation over HTTP: its data, or its errors as the error.
async fn run<Q: GraphQLQuery>(
    http: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    variables: Q::Variables,
) -> anyhow::Result<Q::ResponseData> {
    let mut request = http.post(url).json(&Q::build_query(variables));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response: Response<Q::ResponseData> = request.send().await?.error_for_status()?.json().await?;
    if let Some(errors) = response.errors.filter(|errors| !errors.is_empty()) {
        bail!("GraphQL errors: {errors:?}");
    }
    response.data.context("an answer without data")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let url = std::env::var("FINQL_URL").unwrap_or_else(|_| "http://127.0.0.1:8000/graphql".into());
    let ws_url = url.replacen("http", "ws", 1);
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;

    let email = format!("rs-{}@example.com", uuid::Uuid::new_v4());
    let signed_up = run::<SignUp>(
        &http,
        &url,
        None,
        sign_up::Variables {
            input: sign_up::SignUpInput {
                email: email.clone(),
                password: "correct horse battery".into(),
                full_name: "Rust Example".into(),
            },
        },
    )
    .await?
    .sign_up;
    ensure!(signed_up.user.email == email);
    let token = signed_up.access_token;
    println!("signed up {email} ({})", signed_up.user.id);

    // Money goes out as a decimal string and comes back exact, with the currency's digits.
    let occurred: DateTime = "2026-11-02T10:00:00Z".parse()?;
    let created = run::<CreateTransaction>(
        &http,
        &url,
        Some(&token),
        create_transaction::Variables {
            input: create_transaction::CreateTransactionInput {
                amount: "12.3".parse()?,
                kind: create_transaction::TransactionKind::DEBIT,
                currency: Some("USD".into()),
                category: Some("coffee".into()),
                description: None,
                idempotency_key: None,
                occurred_at: Some(occurred),
                status: None,
            },
        },
    )
    .await?
    .create_transaction;
    ensure!(created.amount.to_string() == "12.30", "amount {}", created.amount);
    ensure!(created.occurred_at == occurred);
    println!("created transaction {}: {} {}", created.id, created.amount, created.currency);

    let page = run::<Transactions>(&http, &url, Some(&token), transactions::Variables { first: 10, after: None })
        .await?
        .transactions;
    ensure!(page.total_count == 1);
    ensure!(page.nodes.iter().map(|t| &t.id).eq([&created.id]));

    let quotes = run::<Quotes>(
        &http,
        &url,
        Some(&token),
        quotes::Variables { symbols: vec!["AAPL.US".into(), "CRYPTO:BTCUSDT".into()] },
    )
    .await?
    .quotes;
    let [Some(aapl), Some(btc)] = quotes.as_slice() else {
        bail!("expected two quotes, got {quotes:?}");
    };
    ensure!(aapl.last > Decimal::ZERO);

    let today = chrono::Utc::now().date_naive();
    let security = run::<SecurityWithFundamentals>(
        &http,
        &url,
        Some(&token),
        security_with_fundamentals::Variables {
            symbol: "aapl.us".into(),
            from: today - chrono::Days::new(30),
            to: today,
        },
    )
    .await?
    .security
    .context("security is null")?;
    ensure!(security.symbol == "AAPL.US");
    let quote = security.quote.context("the security's quote is null")?;
    ensure!(quote.id == aapl.id, "a security's quote has its own id");
    let points = security.fundamentals.context("fundamentals are null")?.nodes;
    let point = points.first().context("no fundamentals")?;
    println!("{} {}: last {}, P/E {:?}", security.symbol, security.name, quote.last, point.pe);

    // A live quote over graphql-transport-ws, the token in `connection_init`.
    let mut request = ws_url.as_str().into_client_request()?;
    request.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_static("graphql-transport-ws"));
    let (socket, _) = tokio_tungstenite::connect_async(request).await?;
    let mut live = graphql_ws_client::Client::build(socket)
        .payload(serde_json::json!({ "Authorization": format!("Bearer {token}") }))?
        .subscribe(StreamingOperation::<LiveQuotes>::new(live_quotes::Variables {
            symbols: vec!["CRYPTO:BTCUSDT".into()],
        }))
        .await?;
    let update = tokio::time::timeout(LIVE_TIMEOUT, live.next())
        .await
        .context("no live quote in time")?
        .context("the subscription ended")??;
    let live_quote = update.data.context("a live update without data")?.quotes;
    ensure!(live_quote.id == btc.id, "a live quote has another id than the queried one");
    println!("live {}: {} at {}", live_quote.symbol, live_quote.last, live_quote.timestamp.to_rfc3339());

    println!("rust example: all operations ok");
    Ok(())
}
