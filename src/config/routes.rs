//! `FINQL_ROUTES`: which sources serve which markets, in order of preference, in the syntax
//! operators script:
//!
//! ```text
//! FINQL_ROUTES="stock:US=polygon,itick;stock:HK=itick;crypto:*=itick,polygon;*=simulated"
//! ```
//!
//! Rules are separated by `;`; each is `CLASS:REGION=SOURCE,SOURCE…`, `CLASS:*=…` (every region
//! of the class, also written `CLASS=…`) or `*=…` (everything else). Classes are `stock`, `fund`,
//! `forex`, `index`, `crypto` and `future`; regions are the markets of finql's calendars (`US`,
//! `HK`, `CN`, `JP`, `GB`, `DE`, `GLOBAL`, `FX`), any case. The most specific rule wins
//! (class and region, then class, then `*`); an instrument no rule matches is served by
//! `FINQL_MARKET_SOURCE`, which stays the one-line shorthand. Everything is checked at start:
//! a typo is an error, never a rule that silently matches nothing.

use anyhow::bail;

use super::MarketSourceKind;

/// The asset classes a rule may name.
pub const CLASSES: [&str; 6] = ["stock", "fund", "forex", "index", "crypto", "future"];
/// The regions a rule may name: `market::calendar::Region`'s codes (a test there keeps them
/// equal).
pub const REGIONS: [&str; 8] = ["US", "HK", "CN", "JP", "GB", "DE", "GLOBAL", "FX"];

/// The routing table, in the order written.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Routes {
    pub rules: Vec<Route>,
}

/// One rule: what it matches (`None`: any) and its sources, best first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// One of [`CLASSES`].
    pub class: Option<&'static str>,
    /// One of [`REGIONS`].
    pub region: Option<&'static str>,
    pub sources: Vec<MarketSourceKind>,
}

impl Routes {
    /// The table of `FINQL_ROUTES`.
    pub fn parse(raw: &str) -> anyhow::Result<Self> {
        let mut rules: Vec<Route> = Vec::new();
        for rule in raw.split(';').map(str::trim).filter(|rule| !rule.is_empty()) {
            let Some((key, sources)) = rule.split_once('=') else {
                bail!("FINQL_ROUTES rule `{rule}` has no `=`: write `stock:US=polygon,itick`")
            };
            let (class, region) = key_of(key.trim())?;
            if rules.iter().any(|r| r.class == class && r.region == region) {
                bail!("FINQL_ROUTES names `{}` twice", key.trim());
            }
            let sources = super::parse_sources(&format!("FINQL_ROUTES rule `{}`", rule.trim()), sources)?;
            rules.push(Route { class, region, sources });
        }
        Ok(Self { rules })
    }

    /// The sources of the rule for an instrument of `class` (lower case) in `region`, if any.
    pub fn sources_for(&self, class: &str, region: &str) -> Option<&[MarketSourceKind]> {
        let matching = |class_wanted: bool, region_wanted: bool| {
            self.rules.iter().find(|r| {
                r.class.is_some() == class_wanted
                    && r.region.is_some() == region_wanted
                    && r.class.is_none_or(|c| c == class)
                    && r.region.is_none_or(|g| g.eq_ignore_ascii_case(region))
            })
        };
        matching(true, true)
            .or_else(|| matching(true, false))
            .or_else(|| matching(false, false))
            .map(|r| r.sources.as_slice())
    }

    /// Every source the table names, in the order first named.
    pub fn sources(&self) -> Vec<MarketSourceKind> {
        let mut all = Vec::new();
        for source in self.rules.iter().flat_map(|r| &r.sources) {
            if !all.contains(source) {
                all.push(*source);
            }
        }
        all
    }
}

/// `*`, `CLASS`, `CLASS:*` or `CLASS:REGION`.
fn key_of(key: &str) -> anyhow::Result<(Option<&'static str>, Option<&'static str>)> {
    if key == "*" {
        return Ok((None, None));
    }
    let (class, region) = key.split_once(':').unwrap_or((key, "*"));
    let Some(class) = CLASSES.iter().find(|c| c.eq_ignore_ascii_case(class.trim())) else {
        bail!("FINQL_ROUTES names the asset class `{class}`: the classes are {}", CLASSES.join(", "))
    };
    let region = match region.trim() {
        "*" => None,
        region => match REGIONS.iter().find(|r| r.eq_ignore_ascii_case(region)) {
            Some(region) => Some(*region),
            None => bail!("FINQL_ROUTES names the region `{region}`: the regions are {}", REGIONS.join(", ")),
        },
    };
    Ok((Some(*class), region))
}

#[cfg(test)]
mod tests {
    use super::*;
    use MarketSourceKind::{Itick, Polygon, Simulated};

    #[test]
    fn the_issues_example_routes_each_market() {
        let routes = Routes::parse("stock:US=polygon,itick;stock:HK=itick;crypto:*=itick,polygon;*=simulated").unwrap();
        assert_eq!(routes.sources_for("stock", "US"), Some(&[Polygon, Itick][..]));
        assert_eq!(routes.sources_for("stock", "us"), Some(&[Polygon, Itick][..]));
        assert_eq!(routes.sources_for("stock", "HK"), Some(&[Itick][..]));
        assert_eq!(routes.sources_for("crypto", "GLOBAL"), Some(&[Itick, Polygon][..]));
        assert_eq!(routes.sources_for("stock", "CN"), Some(&[Simulated][..]), "the default rule");
        assert_eq!(routes.sources(), [Polygon, Itick, Simulated]);
    }

    #[test]
    fn the_most_specific_rule_wins_whatever_the_order() {
        let routes = Routes::parse(" * = simulated ; stock = itick ; stock:us = polygon ;").unwrap();
        assert_eq!(routes.sources_for("stock", "US"), Some(&[Polygon][..]));
        assert_eq!(routes.sources_for("stock", "HK"), Some(&[Itick][..]));
        assert_eq!(routes.sources_for("forex", "FX"), Some(&[Simulated][..]));
        let no_default = Routes::parse("stock:US=polygon").unwrap();
        assert_eq!(no_default.sources_for("forex", "FX"), None, "left to FINQL_MARKET_SOURCE");
        assert_eq!(Routes::parse("").unwrap(), Routes::default());
    }

    #[test]
    fn typos_are_refused_with_what_was_meant() {
        for (raw, says) in [
            ("stock:USA=polygon", "region `USA`"),
            ("stocks:US=polygon", "asset class `stocks`"),
            ("stock:US=polygon,bloomberg", "`bloomberg`"),
            ("stock:US=polygon,polygon", "twice"),
            ("stock:US=itick;STOCK:us=polygon", "twice"),
            ("stock:US", "no `=`"),
            ("stock:US=", "``"),
        ] {
            let err = Routes::parse(raw).unwrap_err().to_string();
            assert!(err.contains(says), "{raw}: {err}");
        }
    }
}
