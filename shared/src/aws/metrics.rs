//! CloudWatch metrics as Embedded Metric Format (EMF) log lines, no SDK.
//!
//! A Lambda function prints [`Metrics::to_json_line`] to stdout; CloudWatch
//! Logs extracts the metrics from it. The line follows the EMF
//! specification:
//!
//! ```json
//! {"_aws":{"Timestamp":1700000000000,
//!          "CloudWatchMetrics":[{"Namespace":"fail2waf",
//!                                "Dimensions":[["Function"]],
//!                                "Metrics":[{"Name":"Objects","Unit":"Count"}]}]},
//!  "Function":"ingest","Objects":3.0}
//! ```
//!
//! Dimension values and metric values are members of the root object; one
//! dimension set holds all dimensions. A directive may list at most 100
//! metrics, so more than 100 metrics are spread over several directives
//! (same namespace and dimensions) in the same line. Serialization is by
//! `serde_json`, so any name or value is escaped correctly.

use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// Most metrics one EMF metric directive may list (EMF specification).
pub const MAX_METRICS_PER_DIRECTIVE: usize = 100;

/// Most dimensions in one EMF dimension set (EMF specification).
pub const MAX_DIMENSIONS: usize = 30;

/// A CloudWatch unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// `Count`.
    Count,
    /// `Milliseconds`.
    Milliseconds,
    /// `Seconds`.
    Seconds,
    /// `Bytes`.
    Bytes,
}

impl Unit {
    /// The unit as CloudWatch spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
            Unit::Seconds => "Seconds",
            Unit::Bytes => "Bytes",
        }
    }
}

/// A set of metric values with one namespace and one set of dimensions,
/// written as one EMF line.
#[derive(Debug, Clone, PartialEq)]
pub struct Metrics {
    namespace: String,
    dimensions: Vec<(String, String)>,
    values: BTreeMap<String, (f64, Unit)>,
}

impl Metrics {
    /// Metrics in `namespace`, with no dimensions and no values yet.
    pub fn new(namespace: &str) -> Self {
        Self {
            namespace: namespace.to_string(),
            dimensions: Vec::new(),
            values: BTreeMap::new(),
        }
    }

    /// Add a dimension, or replace the value of the dimension of that name.
    /// Dimensions past [`MAX_DIMENSIONS`] are ignored.
    pub fn dimension(mut self, name: &str, value: &str) -> Self {
        if let Some(d) = self.dimensions.iter_mut().find(|(n, _)| n == name) {
            d.1 = value.to_string();
        } else if self.dimensions.len() < MAX_DIMENSIONS {
            self.dimensions.push((name.to_string(), value.to_string()));
        }
        self
    }

    /// Add `value` to the metric `name` (starting from 0); the unit becomes
    /// `unit`.
    pub fn add(&mut self, name: &str, value: f64, unit: Unit) {
        let e = self.values.entry(name.to_string()).or_insert((0.0, unit));
        e.0 += value;
        e.1 = unit;
    }

    /// Set the metric `name` to `value`.
    pub fn set(&mut self, name: &str, value: f64, unit: Unit) {
        self.values.insert(name.to_string(), (value, unit));
    }

    /// The current value of the metric `name`.
    pub fn get(&self, name: &str) -> Option<f64> {
        self.values.get(name).map(|(v, _)| *v)
    }

    /// Whether no metric has a value.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// One EMF JSON object, with no newline inside, stamped `timestamp_ms`
    /// (ms since the epoch).
    ///
    /// Metrics are listed in name order. Left out: non-finite values (JSON
    /// has no NaN or infinity), and metrics named like a dimension or
    /// `_aws` (they would collide in the root object).
    pub fn to_json_line(&self, timestamp_ms: i64) -> String {
        let mut root = Map::new();
        for (name, value) in &self.dimensions {
            root.insert(name.clone(), Value::String(value.clone()));
        }
        let mut definitions = Vec::new();
        for (name, (value, unit)) in &self.values {
            if !value.is_finite() || name == "_aws" || root.contains_key(name) {
                continue;
            }
            root.insert(name.clone(), json!(value));
            definitions.push(json!({"Name": name, "Unit": unit.as_str()}));
        }
        let dimension_set: Vec<&str> = self.dimensions.iter().map(|(n, _)| n.as_str()).collect();
        let directives: Vec<Value> = definitions
            .chunks(MAX_METRICS_PER_DIRECTIVE)
            .map(|chunk| {
                json!({
                    "Namespace": self.namespace,
                    "Dimensions": [dimension_set],
                    "Metrics": chunk,
                })
            })
            .collect();
        root.insert(
            "_aws".to_string(),
            json!({"Timestamp": timestamp_ms, "CloudWatchMetrics": directives}),
        );
        Value::Object(root).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Value {
        assert!(!line.contains('\n'), "newline inside: {line}");
        serde_json::from_str(line).expect("valid JSON")
    }

    #[test]
    fn structure_and_values() {
        let mut m = Metrics::new("fail2waf")
            .dimension("Function", "ingest")
            .dimension("Stage", "prod");
        m.add("Objects", 1.0, Unit::Count);
        m.add("Objects", 2.0, Unit::Count);
        m.set("DurationMs", 12.5, Unit::Milliseconds);
        m.set("DurationMs", 15.0, Unit::Milliseconds);
        m.add("BytesRead", 1024.0, Unit::Bytes);
        m.set("Lag", 3.0, Unit::Seconds);
        let v = parse(&m.to_json_line(1_700_000_000_123));
        assert_eq!(v["_aws"]["Timestamp"], json!(1_700_000_000_123i64));
        let dirs = v["_aws"]["CloudWatchMetrics"].as_array().unwrap();
        assert_eq!(dirs.len(), 1);
        assert_eq!(dirs[0]["Namespace"], "fail2waf");
        assert_eq!(dirs[0]["Dimensions"], json!([["Function", "Stage"]]));
        assert_eq!(
            dirs[0]["Metrics"],
            json!([
                {"Name": "BytesRead", "Unit": "Bytes"},
                {"Name": "DurationMs", "Unit": "Milliseconds"},
                {"Name": "Lag", "Unit": "Seconds"},
                {"Name": "Objects", "Unit": "Count"},
            ])
        );
        assert_eq!(v["Function"], "ingest");
        assert_eq!(v["Stage"], "prod");
        assert_eq!(v["Objects"].as_f64(), Some(3.0));
        assert_eq!(v["DurationMs"].as_f64(), Some(15.0));
        assert_eq!(v["BytesRead"].as_f64(), Some(1024.0));
        assert_eq!(v["Lag"].as_f64(), Some(3.0));
        // Root: 2 dimensions + 4 metrics + _aws, nothing else.
        assert_eq!(v.as_object().unwrap().len(), 7);
        assert_eq!(m.get("Objects"), Some(3.0));
    }

    #[test]
    fn no_dimensions_is_one_empty_dimension_set() {
        let mut m = Metrics::new("ns");
        m.add("A", 1.0, Unit::Count);
        let v = parse(&m.to_json_line(0));
        assert_eq!(v["_aws"]["CloudWatchMetrics"][0]["Dimensions"], json!([[]]));
        assert_eq!(v["A"].as_f64(), Some(1.0));
    }

    #[test]
    fn empty_metrics_still_valid() {
        let m = Metrics::new("ns").dimension("F", "x");
        assert!(m.is_empty());
        let v = parse(&m.to_json_line(5));
        assert_eq!(v["_aws"]["CloudWatchMetrics"], json!([]));
        assert_eq!(v["_aws"]["Timestamp"], json!(5));
    }

    #[test]
    fn escaping_of_names_and_values() {
        let nasty = "quote\" back\\slash\nnewline\ttab \u{1} é ☃";
        let mut m = Metrics::new(nasty).dimension(nasty, nasty);
        m.add("metric \"x\"\n", 1.0, Unit::Count);
        let line = m.to_json_line(1);
        let v = parse(&line);
        assert_eq!(v["_aws"]["CloudWatchMetrics"][0]["Namespace"], nasty);
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([[nasty]])
        );
        assert_eq!(v[nasty], nasty);
        assert_eq!(v["metric \"x\"\n"].as_f64(), Some(1.0));
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"],
            "metric \"x\"\n"
        );
    }

    #[test]
    fn more_than_100_metrics_split_into_directives() {
        let mut m = Metrics::new("ns").dimension("F", "x");
        for i in 0..250 {
            m.set(&format!("m{i:03}"), i as f64, Unit::Count);
        }
        let v = parse(&m.to_json_line(1));
        let dirs = v["_aws"]["CloudWatchMetrics"].as_array().unwrap();
        let sizes: Vec<usize> = dirs
            .iter()
            .map(|d| d["Metrics"].as_array().unwrap().len())
            .collect();
        assert_eq!(sizes, vec![100, 100, 50]);
        for d in dirs {
            assert_eq!(d["Namespace"], "ns");
            assert_eq!(d["Dimensions"], json!([["F"]]));
            assert!(d["Metrics"].as_array().unwrap().len() <= MAX_METRICS_PER_DIRECTIVE);
        }
        // Every metric listed exactly once, each with its value at the root.
        let mut names: Vec<&str> = dirs
            .iter()
            .flat_map(|d| d["Metrics"].as_array().unwrap())
            .map(|m| m["Name"].as_str().unwrap())
            .collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), 250);
        assert_eq!(v["m249"].as_f64(), Some(249.0));
    }

    #[test]
    fn exactly_100_metrics_is_one_directive() {
        let mut m = Metrics::new("ns");
        for i in 0..100 {
            m.add(&format!("m{i}"), 1.0, Unit::Count);
        }
        let v = parse(&m.to_json_line(1));
        assert_eq!(v["_aws"]["CloudWatchMetrics"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn non_finite_and_colliding_metrics_left_out() {
        let mut m = Metrics::new("ns").dimension("Function", "f");
        m.set("Nan", f64::NAN, Unit::Count);
        m.set("Inf", f64::INFINITY, Unit::Count);
        m.set("Function", 1.0, Unit::Count);
        m.set("_aws", 1.0, Unit::Count);
        m.set("Ok", 2.0, Unit::Count);
        let v = parse(&m.to_json_line(1));
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Metrics"],
            json!([{"Name": "Ok", "Unit": "Count"}])
        );
        assert_eq!(v["Function"], "f");
        assert!(v.get("Nan").is_none() && v.get("Inf").is_none());
        assert!(v["_aws"].is_object());
    }

    #[test]
    fn dimension_replaces_and_caps() {
        let mut m = Metrics::new("ns").dimension("A", "1").dimension("A", "2");
        for i in 0..40 {
            m = m.dimension(&format!("D{i}"), "v");
        }
        m.add("X", 1.0, Unit::Count);
        let v = parse(&m.to_json_line(1));
        assert_eq!(v["A"], "2");
        let set = v["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0]
            .as_array()
            .unwrap()
            .clone();
        assert_eq!(set.len(), MAX_DIMENSIONS);
        assert_eq!(set[0], "A");
    }
}
