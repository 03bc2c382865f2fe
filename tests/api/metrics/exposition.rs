//! A parser of Prometheus' text exposition format (0.0.4), strict enough that a malformed
//! exposition fails the test: every sample line must parse, belong to a family declared by
//! `# TYPE`, and a histogram's buckets must be cumulative and end at `+Inf` = `_count`.

use std::collections::{BTreeMap, HashMap};

/// One sample: `name{labels} value`.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// A parsed exposition: its families' types and every sample.
#[derive(Debug, Default)]
pub struct Exposition {
    pub types: HashMap<String, String>,
    pub samples: Vec<Sample>,
}

impl Exposition {
    /// Parses `text`, panicking with the offending line on anything malformed.
    pub fn parse(text: &str) -> Self {
        let mut exposition = Self::default();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            if let Some(comment) = line.strip_prefix('#') {
                let mut words = comment.split_whitespace();
                if words.next() == Some("TYPE") {
                    let (Some(name), Some(kind), None) = (words.next(), words.next(), words.next()) else {
                        panic!("malformed TYPE line: {line}");
                    };
                    assert!(
                        ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                        "unknown type in: {line}"
                    );
                    let previous = exposition.types.insert(name.to_owned(), kind.to_owned());
                    assert!(previous.is_none(), "family {name} declared twice");
                }
                continue;
            }
            let sample = parse_sample(line).unwrap_or_else(|| panic!("malformed sample line: {line}"));
            assert!(exposition.family_of(&sample.name).is_some(), "sample of an undeclared family: {line}");
            exposition.samples.push(sample);
        }
        exposition.check_histograms();
        exposition
    }

    /// The declared family a sample name belongs to (`x_bucket` → `x` for a histogram).
    pub fn family_of(&self, sample: &str) -> Option<&str> {
        if let Some((name, _)) = self.types.get_key_value(sample) {
            return Some(name);
        }
        ["_bucket", "_sum", "_count"].iter().find_map(|suffix| {
            let base = sample.strip_suffix(suffix)?;
            matches!(self.types.get(base).map(String::as_str), Some("histogram" | "summary"))
                .then(|| self.types.get_key_value(base).map(|(k, _)| k.as_str()))?
        })
    }

    /// The type `# TYPE` gave `family`.
    pub fn kind(&self, family: &str) -> Option<&str> {
        self.types.get(family).map(String::as_str)
    }

    /// Samples named `name` whose labels include all of `labels`.
    pub fn matching<'a>(&'a self, name: &'a str, labels: &'a [(&str, &str)]) -> impl Iterator<Item = &'a Sample> {
        self.samples.iter().filter(move |sample| {
            sample.name == name && labels.iter().all(|(k, v)| sample.labels.get(*k).map(String::as_str) == Some(*v))
        })
    }

    /// The sum of the samples named `name` that carry `labels` (0 when there is none).
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.matching(name, labels).map(|sample| sample.value).sum()
    }

    /// Each histogram series: buckets cumulative, ending at `+Inf` equal to `_count`.
    fn check_histograms(&self) {
        for (family, kind) in &self.types {
            if kind != "histogram" {
                continue;
            }
            let bucket_name = format!("{family}_bucket");
            let mut series: BTreeMap<BTreeMap<String, String>, Vec<(f64, f64)>> = BTreeMap::new();
            for sample in self.samples.iter().filter(|s| s.name == bucket_name) {
                let mut labels = sample.labels.clone();
                let le = labels.remove("le").unwrap_or_else(|| panic!("a bucket of {family} without `le`"));
                let le = if le == "+Inf" { f64::INFINITY } else { le.parse().expect("numeric le") };
                series.entry(labels).or_default().push((le, sample.value));
            }
            for (labels, mut buckets) in series {
                buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
                assert!(buckets.windows(2).all(|w| w[0].1 <= w[1].1), "{family}{labels:?}: buckets not cumulative");
                let (le, inf) = *buckets.last().expect("a bucket");
                assert!(le.is_infinite(), "{family}{labels:?}: no +Inf bucket");
                let count_name = format!("{family}_count");
                let count = self.samples.iter().find(|s| s.name == count_name && s.labels == labels);
                assert_eq!(count.map(|s| s.value), Some(inf), "{family}{labels:?}: +Inf bucket != _count");
            }
        }
    }
}

/// `name{a="x",b="y"} value [timestamp]`, with `\\`, `\"` and `\n` escapes in label values.
fn parse_sample(line: &str) -> Option<Sample> {
    let name_end = line.find(|c: char| c == '{' || c.is_whitespace())?;
    let name = &line[..name_end];
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
        return None;
    }
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if let Some(inner) = rest.strip_prefix('{') {
        let mut chars = inner.char_indices().peekable();
        let end = loop {
            // A label name up to `=`, or the closing brace.
            while chars.next_if(|(_, c)| *c == ',' || c.is_whitespace()).is_some() {}
            let (start, first) = chars.next()?;
            if first == '}' {
                break start + 1;
            }
            let mut key = String::from(first);
            loop {
                let (_, c) = chars.next()?;
                if c == '=' {
                    break;
                }
                key.push(c);
            }
            if chars.next()?.1 != '"' {
                return None;
            }
            let mut value = String::new();
            loop {
                match chars.next()?.1 {
                    '"' => break,
                    '\\' => match chars.next()?.1 {
                        'n' => value.push('\n'),
                        other => value.push(other),
                    },
                    c => value.push(c),
                }
            }
            if labels.insert(key, value).is_some() {
                return None;
            }
        };
        rest = &inner[end..];
    }
    let mut fields = rest.split_whitespace();
    let value = match fields.next()? {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        number => number.parse().ok()?,
    };
    if let Some(timestamp) = fields.next() {
        timestamp.parse::<i64>().ok()?;
    }
    fields.next().is_none().then(|| Sample { name: name.to_owned(), labels, value })
}

#[test]
fn parses_labels_escapes_and_histograms() {
    let text = "# HELP a_total A counter\n# TYPE a_total counter\na_total{x=\"1\",y=\"q\\\"uo\\\\te\"} 3\n\
                # TYPE h histogram\nh_bucket{le=\"0.1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 0.3\nh_count 2\n";
    let exposition = Exposition::parse(text);
    assert_eq!(exposition.sum("a_total", &[("y", "q\"uo\\te")]), 3.0);
    assert_eq!(exposition.sum("h_count", &[]), 2.0);
    assert_eq!(exposition.family_of("h_bucket"), Some("h"));
    assert!(parse_sample("bad line here").is_none());
    assert!(parse_sample("x{a=\"1\" 2").is_none());
}

#[test]
#[should_panic(expected = "not cumulative")]
fn a_histogram_whose_buckets_shrink_is_refused() {
    Exposition::parse("# TYPE h histogram\nh_bucket{le=\"0.1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n");
}
