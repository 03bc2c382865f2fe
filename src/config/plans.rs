//! Plans: named bundles of limits and entitlements a tenant is on.
//!
//! Read from `FINQL_PLANS_FILE` (TOML, the shape below; unknown keys are allowed so a plan file
//! can carry a deployment's own annotations), or the built-in plans when unset. A plan is
//! configuration, not data: every replica reads the same file, and changing a limit is a
//! deploy, reviewed like code. Which plan a tenant is on is data (`finql tenant set-plan`).
//!
//! ```toml
//! [plans.basic]
//! rate_per_second = 5        # requests, GCRA emission rate
//! burst = 5                  # requests allowed at once
//! cost_per_minute = 20000    # query cost units
//! max_connections = 1        # WebSockets open at once, per tenant
//! max_live_symbols = 50      # distinct symbols subscribed at once, per tenant
//! history_days = 30          # how far back klines, ticks, fundamentals and actions reach
//! fundamentals = false
//! delay_minutes = 15         # what "delayed" means for this plan
//! sources = ["itick"]        # sources a field's `source` argument may pin (all when absent)
//! datasets = ["esg_scores"]  # proprietary datasets it reads (all when absent)
//! [plans.basic.markets]      # US, HK, SH, SZ (stock and fund regions); FX, IDX, CRYPTO, FUT
//! US = "realtime"            # "realtime" | "delayed" | "none"; a market not listed is
//! HK = "delayed"             # "none"; "*" sets the rest
//! FX = "realtime"
//! ```

use std::{
    collections::{BTreeMap, HashMap},
    fmt,
    path::Path,
    sync::Arc,
};

use anyhow::{Context, bail};
use serde::Deserialize;

/// The markets a plan can name: stock and fund listing regions, then asset-class prefixes.
pub const MARKETS: [&str; 8] = ["US", "HK", "SH", "SZ", "FX", "IDX", "CRYPTO", "FUT"];

/// What a plan grants in one market.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    /// No data.
    None,
    /// Prices at least the plan's `delay_minutes` old; no order books.
    Delayed,
    /// Everything, as it happens.
    Realtime,
}

impl Access {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Delayed => "delayed",
            Self::Realtime => "realtime",
        }
    }
}

/// A plan's limits and entitlements (see the module doc for each field's meaning).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub name: String,
    /// Requests per second (GCRA emission rate), per tenant.
    pub rate_per_second: u32,
    /// Requests allowed at once.
    pub burst: u32,
    /// Query cost units per minute (refilled continuously), per tenant.
    pub cost_per_minute: u32,
    /// WebSocket connections open at once, per tenant.
    pub max_connections: u32,
    /// Distinct symbols subscribed at once, per tenant.
    pub max_live_symbols: u32,
    /// How many days back history reaches (klines, ticks, fundamentals, corporate actions).
    pub history_days: u32,
    pub fundamentals: bool,
    /// How old a price must be before a `delayed` market may show it.
    pub delay_minutes: u32,
    /// Access per market named in the plan.
    pub markets: BTreeMap<String, Access>,
    /// Access in the markets not named (`"*"`; `none` when absent).
    pub other_markets: Access,
    /// The market sources a caller may pin with a field's `source` argument (`sources =
    /// ["polygon"]`); `None`, the key absent: every source.
    pub sources: Option<Vec<String>>,
    /// The proprietary datasets a caller may read (`datasets = ["analyst_ratings"]`); `None`,
    /// the key absent: every dataset.
    pub datasets: Option<Vec<String>>,
}

impl Plan {
    /// The access this plan grants in `market` (a [`MARKETS`] name).
    pub fn access(&self, market: &str) -> Access {
        self.markets.get(market).copied().unwrap_or(self.other_markets)
    }

    /// The access in every market finql knows, in [`MARKETS`] order.
    pub fn all_markets(&self) -> impl Iterator<Item = (&'static str, Access)> + '_ {
        MARKETS.iter().map(|market| (*market, self.access(market)))
    }

    /// Whether a caller on this plan may pin `source` (`itick`, `polygon`, `simulated`).
    pub fn allows_source(&self, source: &str) -> bool {
        self.sources.as_ref().is_none_or(|sources| sources.iter().any(|s| s == source))
    }

    /// Whether a caller on this plan may read the dataset `name`.
    pub fn allows_dataset(&self, name: &str) -> bool {
        self.datasets.as_ref().is_none_or(|datasets| datasets.iter().any(|d| d == name))
    }

    /// `delay_minutes` as a duration.
    pub fn delay(&self) -> chrono::Duration {
        chrono::Duration::minutes(i64::from(self.delay_minutes))
    }
}

/// The plans of this deployment, by name.
#[derive(Clone, Debug)]
pub struct Plans(HashMap<String, Arc<Plan>>);

impl Plans {
    /// The plan called `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<Plan>> {
        self.0.get(name)
    }

    /// Every plan, by name.
    pub fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.0.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }

    /// `FINQL_PLANS_FILE` when set, the built-in plans otherwise.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        match file {
            None => Ok(Self::builtin()),
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading FINQL_PLANS_FILE {}", path.display()))?;
                Self::parse(&text).with_context(|| format!("in FINQL_PLANS_FILE {}", path.display()))
            }
        }
    }

    /// Parses a plan file.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let file: PlanFile = toml::from_str(text).map_err(|err| anyhow::anyhow!("{}", err.message()))?;
        if file.plans.is_empty() {
            bail!("no plans: the file needs at least one [plans.NAME] table");
        }
        let mut plans = HashMap::new();
        for (name, raw) in file.plans {
            let plan = raw.into_plan(&name).with_context(|| format!("plan `{name}`"))?;
            plans.insert(name, Arc::new(plan));
        }
        Ok(Self(plans))
    }

    /// The plans finql ships with (see README, "Tenants and plans").
    pub fn builtin() -> Self {
        // Parsed from the same format as a plan file, so the built-ins are an example of one.
        Self::parse(BUILTIN).unwrap_or_else(|err| unreachable!("the built-in plans parse: {err:#}"))
    }
}

/// The built-in plans. `anonymous` is what callers without credentials get in development;
/// `basic` is the issue's example; `pro` a paying desk; `developer` the generous default of
/// `FINQL_DEFAULT_PLAN` in development, so GraphiQL on a laptop meets no limit; `enterprise`
/// the ceiling. The last two reach 200 years back (`history_days = 73000`): further than any
/// instrument finql serves has traded (the oldest listings are from the 1920s), so their history
/// is never cut.
const BUILTIN: &str = r#"
[plans.anonymous]
rate_per_second = 2
burst = 10
cost_per_minute = 5000
max_connections = 2
max_live_symbols = 10
history_days = 30
fundamentals = false
delay_minutes = 15
[plans.anonymous.markets]
"*" = "delayed"

[plans.basic]
rate_per_second = 5
burst = 5
cost_per_minute = 20000
max_connections = 1
max_live_symbols = 50
history_days = 30
fundamentals = false
delay_minutes = 15
[plans.basic.markets]
US = "realtime"
HK = "delayed"
FX = "realtime"

[plans.pro]
rate_per_second = 50
burst = 100
cost_per_minute = 500000
max_connections = 20
max_live_symbols = 1000
history_days = 3650
fundamentals = true
delay_minutes = 15
[plans.pro.markets]
"*" = "realtime"

[plans.developer]
rate_per_second = 1000
burst = 2000
cost_per_minute = 10000000
max_connections = 1000
max_live_symbols = 10000
history_days = 73000
fundamentals = true
delay_minutes = 15
[plans.developer.markets]
"*" = "realtime"

[plans.enterprise]
rate_per_second = 5000
burst = 10000
cost_per_minute = 100000000
max_connections = 10000
max_live_symbols = 100000
history_days = 73000
fundamentals = true
delay_minutes = 15
[plans.enterprise.markets]
"*" = "realtime"
"#;

#[derive(Deserialize)]
struct PlanFile {
    #[serde(default)]
    plans: BTreeMap<String, RawPlan>,
}

#[derive(Deserialize)]
struct RawPlan {
    rate_per_second: u32,
    burst: u32,
    cost_per_minute: u32,
    max_connections: u32,
    max_live_symbols: u32,
    history_days: u32,
    fundamentals: bool,
    delay_minutes: u32,
    #[serde(default)]
    markets: BTreeMap<String, Access>,
    #[serde(default)]
    sources: Option<Vec<String>>,
    /// Checked against the manifests at start (`App::build`), which plans are read before.
    #[serde(default)]
    datasets: Option<Vec<String>>,
}

impl RawPlan {
    fn into_plan(self, name: &str) -> anyhow::Result<Plan> {
        if name.is_empty()
            || name.len() > 64
            || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            bail!("a plan name is 1 to 64 letters, digits, `-` or `_`");
        }
        if self.rate_per_second == 0 || self.burst == 0 {
            bail!("rate_per_second and burst must be at least 1 (use market access \"none\" to refuse data)");
        }
        if self.cost_per_minute < self.burst {
            bail!("cost_per_minute must be at least burst: every request costs at least 1");
        }
        let mut markets = BTreeMap::new();
        let mut other_markets = Access::None;
        for (market, access) in self.markets {
            let key = market.trim().to_ascii_uppercase();
            if key == "*" {
                other_markets = access;
            } else if MARKETS.contains(&key.as_str()) {
                markets.insert(key, access);
            } else {
                bail!("unknown market `{market}`: markets are {} or \"*\"", MARKETS.join(", "));
            }
        }
        let sources = match self.sources {
            None => None,
            Some(names) => Some(
                names
                    .iter()
                    .map(|source| {
                        let source = source.trim().to_ascii_lowercase();
                        match super::MarketSourceKind::parse(&source) {
                            Some(kind) => Ok(kind.name().to_owned()),
                            None => bail!("unknown source `{source}`: sources are itick, polygon and simulated"),
                        }
                    })
                    .collect::<anyhow::Result<Vec<String>>>()?,
            ),
        };
        Ok(Plan {
            name: name.to_owned(),
            rate_per_second: self.rate_per_second,
            burst: self.burst,
            cost_per_minute: self.cost_per_minute,
            max_connections: self.max_connections,
            max_live_symbols: self.max_live_symbols,
            history_days: self.history_days,
            fundamentals: self.fundamentals,
            delay_minutes: self.delay_minutes,
            markets,
            other_markets,
            sources,
            datasets: self.datasets,
        })
    }
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_issue_example_parses_with_extra_keys() {
        let plans = Plans::parse(
            r#"
            [plans.basic]
            rate_per_second = 5
            burst = 5
            cost_per_minute = 20000
            max_connections = 1
            max_live_symbols = 50
            history_days = 30
            fundamentals = false
            delay_minutes = 15
            billing_code = "B-1"
            [plans.basic.markets]
            US = "realtime"
            hk = "delayed"
            FX = "realtime"
            "#,
        )
        .unwrap();
        let basic = plans.get("basic").unwrap();
        assert_eq!(basic.access("US"), Access::Realtime);
        assert_eq!(basic.access("HK"), Access::Delayed);
        assert_eq!(basic.access("SH"), Access::None, "a market not listed is none");
        assert_eq!(basic.delay(), chrono::Duration::minutes(15));
    }

    #[test]
    fn star_sets_the_rest() {
        let plans = Plans::builtin();
        assert_eq!(plans.get("anonymous").unwrap().access("CRYPTO"), Access::Delayed);
        assert!(plans.get("developer").unwrap().all_markets().all(|(_, a)| a == Access::Realtime));
        assert_eq!(plans.names(), ["anonymous", "basic", "developer", "enterprise", "pro"]);
    }

    #[test]
    fn bad_plan_files_say_what_is_wrong() {
        let err = |text: &str| format!("{:#}", Plans::parse(text).unwrap_err());
        assert!(err("[plans.x]\nrate_per_second = 1").contains("missing field"));
        let base = "rate_per_second = 1\nburst = 1\ncost_per_minute = 10\nmax_connections = 1\n\
                    max_live_symbols = 1\nhistory_days = 1\nfundamentals = false\ndelay_minutes = 15\n";
        assert!(err(&format!("[plans.x]\n{base}[plans.x.markets]\nMARS = \"realtime\"")).contains("unknown market"));
        assert!(err(&format!("[plans.x]\n{base}[plans.x.markets]\nUS = \"sometimes\"")).contains("unknown variant"));
        assert!(err("").contains("no plans"));
        assert!(err(&format!("[plans.x]\n{}", base.replace("burst = 1", "burst = 0"))).contains("at least 1"));
        assert!(err(&format!("[plans.x]\n{base}sources = [\"bloomberg\"]")).contains("unknown source `bloomberg`"));
    }

    #[test]
    fn a_plan_lists_the_sources_it_may_pin_or_allows_all() {
        let base = "rate_per_second = 1\nburst = 1\ncost_per_minute = 10\nmax_connections = 1\n\
                    max_live_symbols = 1\nhistory_days = 1\nfundamentals = false\ndelay_minutes = 15\n";
        let plans = Plans::parse(&format!("[plans.some]\n{base}sources = [\"Polygon\"]\n[plans.all]\n{base}")).unwrap();
        let some = plans.get("some").unwrap();
        assert!(some.allows_source("polygon") && !some.allows_source("itick"));
        assert!(plans.get("all").unwrap().allows_source("itick"), "no key: every source");
    }

    #[test]
    fn a_plan_lists_the_datasets_it_reads_or_reads_all() {
        let base = "rate_per_second = 1\nburst = 1\ncost_per_minute = 10\nmax_connections = 1\n\
                    max_live_symbols = 1\nhistory_days = 1\nfundamentals = false\ndelay_minutes = 15\n";
        let text =
            format!("[plans.some]\n{base}datasets = [\"esg\"]\n[plans.none]\n{base}datasets = []\n[plans.all]\n{base}");
        let plans = Plans::parse(&text).unwrap();
        assert!(plans.get("some").unwrap().allows_dataset("esg"));
        assert!(!plans.get("some").unwrap().allows_dataset("ratings"));
        assert!(!plans.get("none").unwrap().allows_dataset("esg"));
        assert!(plans.get("all").unwrap().allows_dataset("ratings"), "no key: every dataset");
    }
}
