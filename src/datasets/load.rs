//! Reading a dataset file (CSV or JSON Lines) into rows, checked one by one against the
//! manifest: every rejected row is reported with its line and why, and nothing is written
//! unless the caller accepts the rejects (`DatasetService::load`).
//!
//! A row is the whole record of its key: a CSV names every field in its header (a column left
//! out would otherwise blank that field on every row it updates), in any order; a JSON line
//! may omit a field, which is then empty. Symbols are canonicalised (`0700.hk` is `700.HK`)
//! and must be in the catalog: a row no `security(symbol:)` can reach is a mistake, not data.
//! A key given twice in one file is a reject: which of the two is meant is not ours to guess.

use std::{
    collections::{HashMap, HashSet},
    io::Read,
};

use chrono::{DateTime, Utc};

use super::{
    manifest::Manifest,
    store::Row,
    value::{self, Value, shown},
};
use crate::reference::Symbol;

/// Rejects reported line by line, at most; the rest are counted.
pub const MAX_REPORTED: usize = 100;

/// How a file is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// A header naming `symbol`, `time` (when keyed by time) and every field, then a row per
    /// line (RFC 4180 quoting).
    Csv,
    /// One JSON object per line: `{"symbol": …, "time": …, "<field>": …}`.
    JsonLines,
}

/// One rejected row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reject {
    /// The line it starts on (1 is a CSV's header).
    pub line: u64,
    pub message: String,
}

/// A file read: its good rows, and what was wrong with the others.
#[derive(Debug, Default)]
pub struct Parsed {
    pub rows: Vec<Row>,
    /// The first [`MAX_REPORTED`] rejects.
    pub rejects: Vec<Reject>,
    /// Every reject, reported or not.
    pub rejected: u64,
}

impl Parsed {
    fn reject(&mut self, line: u64, message: String) {
        self.rejected += 1;
        if self.rejects.len() < MAX_REPORTED {
            self.rejects.push(Reject { line, message });
        }
    }
}

/// Reads `input` against `manifest`; `catalog` holds the canonical symbols finql serves. `Err`
/// when the file as a whole cannot be read (a header that does not fit, a broken encoding).
pub fn parse(
    manifest: &Manifest,
    format: Format,
    input: impl Read,
    catalog: &HashSet<String>,
) -> Result<Parsed, String> {
    let mut checker = Checker { manifest, catalog, seen: HashMap::new(), parsed: Parsed::default() };
    match format {
        Format::Csv => checker.csv(input)?,
        Format::JsonLines => checker.json_lines(input)?,
    }
    Ok(checker.parsed)
}

struct Checker<'a> {
    manifest: &'a Manifest,
    catalog: &'a HashSet<String>,
    /// Each key read, and its line.
    seen: HashMap<(String, Option<DateTime<Utc>>), u64>,
    parsed: Parsed,
}

impl Checker<'_> {
    fn csv(&mut self, input: impl Read) -> Result<(), String> {
        let mut reader = csv::ReaderBuilder::new().has_headers(true).flexible(true).from_reader(input);
        let header = reader.headers().map_err(|err| format!("the header cannot be read: {err}"))?.clone();
        // Where each key column and field is in a record.
        let position = |name: &str| header.iter().position(|h| h.trim_start_matches('\u{feff}').trim() == name);
        for name in header.iter().map(|h| h.trim_start_matches('\u{feff}').trim()) {
            if !self.manifest.key.columns().contains(&name) && self.manifest.field(name).is_none() {
                return Err(format!(
                    "the header names `{name}`, which is neither a key column nor a field of `{}`",
                    self.manifest.name
                ));
            }
        }
        let mut missing: Vec<&str> = self.manifest.key.columns().to_vec();
        missing.extend(self.manifest.fields.iter().map(|f| f.name.as_str()));
        missing.retain(|name| position(name).is_none());
        if !missing.is_empty() {
            return Err(format!("the header lacks {}: a file names every key column and field", missing.join(", ")));
        }
        let symbol_at = position("symbol").unwrap_or_default();
        let time_at = position("time");
        let field_at: Vec<usize> = self.manifest.fields.iter().map(|f| position(&f.name).unwrap_or_default()).collect();
        for record in reader.records() {
            let record = match record {
                Ok(record) => record,
                Err(err) => {
                    let line = err.position().map_or(0, csv::Position::line);
                    match err.kind() {
                        csv::ErrorKind::Utf8 { .. } => self.parsed.reject(line, "not UTF-8".into()),
                        _ => return Err(format!("line {line}: {err}")),
                    }
                    continue;
                }
            };
            let line = record.position().map_or(0, csv::Position::line);
            if record.len() != header.len() {
                self.parsed.reject(line, format!("{} cells where the header has {}", record.len(), header.len()));
                continue;
            }
            let cell = |at: usize| record.get(at).unwrap_or_default();
            let fields = self
                .manifest
                .fields
                .iter()
                .zip(&field_at)
                .map(|(f, at)| Value::from_cell(f.ty, cell(*at)).map_err(|why| format!("{}: {why}", f.name)));
            let row = self.row(cell(symbol_at), time_at.map(cell), fields.collect());
            self.accept(line, row);
        }
        Ok(())
    }

    fn json_lines(&mut self, mut input: impl Read) -> Result<(), String> {
        let mut text = String::new();
        input.read_to_string(&mut text).map_err(|err| format!("the file is not UTF-8 text: {err}"))?;
        for (index, raw) in text.lines().enumerate() {
            let line = index as u64 + 1;
            if raw.trim().is_empty() {
                continue;
            }
            let object = match serde_json::from_str::<serde_json::Value>(raw) {
                Ok(serde_json::Value::Object(object)) => object,
                Ok(_) => {
                    self.parsed.reject(line, "not a JSON object".into());
                    continue;
                }
                Err(err) => {
                    self.parsed.reject(line, format!("not JSON: {err}"));
                    continue;
                }
            };
            if let Some(unknown) = object
                .keys()
                .find(|k| !self.manifest.key.columns().contains(&k.as_str()) && self.manifest.field(k).is_none())
            {
                let unknown: String = unknown.chars().take(64).collect();
                self.parsed.reject(line, format!("`{unknown}` is neither a key column nor a field"));
                continue;
            }
            let text_of = |name: &str| match object.get(name) {
                Some(serde_json::Value::String(s)) => Ok(s.as_str()),
                None | Some(serde_json::Value::Null) => Ok(""),
                Some(_) => Err(format!("{name} must be a string")),
            };
            let (symbol, time) =
                match (text_of("symbol"), self.manifest.key.has_time().then(|| text_of("time")).transpose()) {
                    (Ok(symbol), Ok(time)) => (symbol, time),
                    (Err(why), _) | (_, Err(why)) => {
                        self.parsed.reject(line, why);
                        continue;
                    }
                };
            let null = serde_json::Value::Null;
            let fields = self.manifest.fields.iter().map(|f| {
                Value::from_json(f.ty, object.get(&f.name).unwrap_or(&null)).map_err(|why| format!("{}: {why}", f.name))
            });
            let row = self.row(symbol, time, fields.collect());
            self.accept(line, row);
        }
        Ok(())
    }

    /// A row from its parts, or why not.
    fn row(&self, symbol: &str, time: Option<&str>, values: Vec<Result<Option<Value>, String>>) -> Result<Row, String> {
        let symbol = Symbol::parse(symbol).map_err(|_| format!("symbol: `{}` is not a symbol", shown(symbol)))?;
        if !self.catalog.contains(symbol.as_str()) {
            return Err(format!("symbol: {symbol} is not in the catalog"));
        }
        let time = match time {
            Some("") => return Err("time: empty".into()),
            Some(raw) => Some(value::instant(raw).map_err(|why| format!("time: {why}"))?),
            None => None,
        };
        let values = values.into_iter().collect::<Result<Vec<_>, _>>()?;
        for (field, value) in self.manifest.fields.iter().zip(&values) {
            if field.required && value.is_none() {
                return Err(format!("{}: required, and empty", field.name));
            }
        }
        Ok(Row { symbol: symbol.as_str().to_owned(), time, values })
    }

    fn accept(&mut self, line: u64, row: Result<Row, String>) {
        let row = match row {
            Ok(row) => row,
            Err(why) => return self.parsed.reject(line, why),
        };
        let key = (row.symbol.clone(), row.time);
        if let Some(first) = self.seen.get(&key) {
            return self.parsed.reject(line, format!("the same key as line {first}"));
        }
        self.seen.insert(key, line);
        self.parsed.rows.push(row);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        Manifest::parse(
            "name = \"ratings\"\nkey = [\"symbol\", \"time\"]\n[fields.rating]\ntype = \"text\"\nrequired = true\n\
             [fields.target]\ntype = \"decimal\"\n",
        )
        .unwrap()
    }

    fn catalog() -> HashSet<String> {
        ["AAPL.US", "700.HK"].map(String::from).into()
    }

    #[test]
    fn a_csv_is_checked_row_by_row() {
        let csv = "\u{feff}time,symbol,target,rating\n\
                   2026-11-02,aapl.us,210.50,buy\n\
                   2026-11-02T00:00:00Z,AAPL.US,1,sell\n\
                   2026-11-03,0700.HK,\"1,5\",hold\n\
                   2026-11-03,MSFT.US,,hold\n\
                   2026-11-04,AAPL.US,300,\n\
                   not a time,AAPL.US,1,buy\n\
                   2026-11-05,AAPL.US\n\
                   2026-11-06,700.HK,,\"hold, for now\"\n";
        let parsed = parse(&manifest(), Format::Csv, csv.as_bytes(), &catalog()).unwrap();
        let lines: Vec<_> = parsed.rejects.iter().map(|r| (r.line, r.message.as_str())).collect();
        assert_eq!(
            lines,
            [
                (3, "the same key as line 2"),
                (4, "target: `1,5` is not a decimal number"),
                (5, "symbol: MSFT.US is not in the catalog"),
                (6, "rating: required, and empty"),
                (7, "time: `not a time` is neither an RFC 3339 date-time nor a date (YYYY-MM-DD)"),
                (8, "2 cells where the header has 4"),
            ]
        );
        assert_eq!(parsed.rejected, 6);
        assert_eq!(parsed.rows.len(), 2);
        assert_eq!(parsed.rows[0].symbol, "AAPL.US");
        assert_eq!(parsed.rows[0].values[0], Some(Value::Text("buy".into())));
        assert_eq!(parsed.rows[1].values, [Some(Value::Text("hold, for now".into())), None]);
    }

    #[test]
    fn a_header_that_does_not_fit_refuses_the_file() {
        let parse = |csv: &str| parse(&manifest(), Format::Csv, csv.as_bytes(), &catalog()).unwrap_err();
        assert!(parse("symbol,time,rating\n").contains("lacks target"));
        assert!(parse("symbol,time,rating,target,price\n").contains("names `price`"));
    }

    #[test]
    fn json_lines_are_checked_row_by_row() {
        let text = "{\"symbol\":\"AAPL.US\",\"time\":\"2026-11-02\",\"rating\":\"buy\",\"target\":\"210.5\"}\n\
                    \n\
                    {\"symbol\":\"AAPL.US\",\"time\":\"2026-11-03\",\"rating\":\"buy\",\"target\":210.5}\n\
                    [1]\n\
                    {\"symbol\":\"AAPL.US\",\"time\":\"2026-11-04\",\"rating\":\"buy\",\"note\":1}\n\
                    {\"symbol\":\"700.HK\",\"time\":\"2026-11-04\",\"rating\":\"buy\"}\n";
        let parsed = parse(&manifest(), Format::JsonLines, text.as_bytes(), &catalog()).unwrap();
        let lines: Vec<_> = parsed.rejects.iter().map(|r| r.line).collect();
        assert_eq!(lines, [3, 4, 5]);
        assert!(parsed.rejects[0].message.contains("as a string"), "{:?}", parsed.rejects);
        assert_eq!(parsed.rows.len(), 2);
        assert_eq!(parsed.rows[1].values[1], None);
    }
}
