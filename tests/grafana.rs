//! The Grafana dashboard (docs/grafana/ledgerd.json) and the example alert rules
//! (docs/prometheus/alerts.yml) name only series a real `ledgerd --metrics`
//! serves, so renaming a series breaks this test rather than a dashboard in the
//! field; and the dashboard shows every series docs/OPERATIONS.md lists.

mod support;

use ledger_grpc::pb;
use std::collections::BTreeSet;
use support::{Clients, Server, fresh_dir};
use tonic::Code;

const PROGRAM: &str = "grafana";

fn repository_file(path: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("read {}: {error}", path.display()))
}

/// Every `ledger_…` name in a PromQL expression. All of ledgerd's series start
/// with `ledger_`; other names in an expression are PromQL's own (functions,
/// labels) or Prometheus's (`up`).
fn series_named(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let bytes = expr.as_bytes();
    let is_name = |byte: u8| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b':';
    let mut at = 0;
    while at < bytes.len() {
        if !is_name(bytes[at]) {
            at += 1;
            continue;
        }
        let start = at;
        while at < bytes.len() && is_name(bytes[at]) {
            at += 1;
        }
        // A name inside a label value (`rpc=~"ledger.v1…"`) is preceded by a quote or a dot.
        let quoted = start > 0 && matches!(bytes[start - 1], b'"' | b'.' | b'/');
        let name = &expr[start..at];
        if name.starts_with("ledger_") && !quoted {
            names.insert(name.to_owned());
        }
    }
    names
}

/// The series names a scrape shows (histograms as their `_bucket`, `_sum` and `_count`).
fn scraped_names(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| line.split(['{', ' ']).next().unwrap_or_default().to_owned())
        .collect()
}

/// A server with a little traffic of every kind the series count: writes (so
/// the write path's histograms have samples), an error and a refused token.
async fn scrape_after_traffic() -> String {
    let server = Server::start_in(fresh_dir("grafana"), &["--metrics", "127.0.0.1:0"]);
    let output = String::from_utf8_lossy(&server.output()).into_owned();
    let url = output
        .lines()
        .find_map(|line| line.strip_prefix("ledgerd metrics on "))
        .expect("the metrics address is printed")
        .trim()
        .to_owned();
    let mut admin = server.admin().await;
    admin.create_program(PROGRAM).await;
    admin.add(PROGRAM, "alice", 10).await;
    let overspend = pb::UsePointsRequest {
        program_id: PROGRAM.into(),
        member_id: "alice".into(),
        points: 11,
        remark: "too much".into(),
        ..Default::default()
    };
    let status = admin.points.use_points(overspend).await.expect_err("an overspend is refused");
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    let mut stranger = Clients::new(server.channel().await, "not-a-token");
    let status = stranger.members.get_member(support::get_member(PROGRAM, "alice")).await.expect_err("refused");
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    let text = reqwest::get(&url).await.expect("scrape").text().await.expect("the metrics text");
    server.stop();
    text
}

#[tokio::test]
async fn the_dashboard_and_the_alerts_name_only_series_ledgerd_serves() {
    let served = scraped_names(&scrape_after_traffic().await);

    let dashboard: serde_json::Value =
        serde_json::from_str(&repository_file("docs/grafana/ledgerd.json")).expect("the dashboard is JSON");
    assert!(dashboard["schemaVersion"].as_u64().is_some_and(|version| version >= 39), "a current schema");
    assert_eq!(dashboard["__inputs"][0]["name"], "DS_PROMETHEUS", "the import asks for a Prometheus");
    let variables: Vec<&str> = dashboard["templating"]["list"]
        .as_array()
        .expect("templating variables")
        .iter()
        .filter_map(|variable| variable["name"].as_str())
        .collect();
    assert_eq!(variables, ["DS_PROMETHEUS", "instance"]);

    let mut shown = BTreeSet::new();
    let panels = dashboard["panels"].as_array().expect("panels");
    for panel in panels.iter().filter(|panel| panel["type"] != "row") {
        let title = panel["title"].as_str().expect("a title");
        for field in ["h", "w", "x", "y"] {
            assert!(panel["gridPos"][field].is_u64(), "{title}: gridPos.{field}");
        }
        assert_eq!(panel["datasource"]["uid"], "${DS_PROMETHEUS}", "{title}: the data source");
        let targets = panel["targets"].as_array().filter(|targets| !targets.is_empty());
        for target in targets.unwrap_or_else(|| panic!("{title}: no targets")) {
            let expr = target["expr"].as_str().unwrap_or_else(|| panic!("{title}: a target without expr"));
            assert!(expr.contains(r#"instance=~"$instance""#), "{title}: {expr} follows the instance variable");
            let named = series_named(expr);
            assert!(!named.is_empty(), "{title}: {expr} names no ledger series");
            for name in named {
                assert!(served.contains(&name), "{title}: {name} is not served; /metrics has {served:?}");
                shown.insert(name);
            }
        }
    }

    // Every series the operator's guide lists is on the dashboard.
    let operations = repository_file("docs/OPERATIONS.md");
    let listed: BTreeSet<&str> = operations
        .lines()
        .filter_map(|line| line.strip_prefix("| `")?.split(['`', '{']).next())
        .filter(|name| name.starts_with("ledger_"))
        .collect();
    assert!(listed.len() >= 12, "the series table of docs/OPERATIONS.md: {listed:?}");
    for name in listed {
        let on_dashboard = shown.iter().any(|shown| {
            shown == name || ["_bucket", "_sum", "_count"].iter().any(|suffix| *shown == format!("{name}{suffix}"))
        });
        assert!(on_dashboard, "{name} (docs/OPERATIONS.md) is on no panel");
    }

    let alerts = repository_file("docs/prometheus/alerts.yml");
    let exprs: Vec<&str> =
        alerts.lines().filter_map(|line| line.trim_start().strip_prefix("expr:")).map(str::trim).collect();
    assert!(exprs.len() >= 5, "the alert rules: {exprs:?}");
    for expr in exprs {
        for name in series_named(expr) {
            assert!(served.contains(&name), "alert {expr}: {name} is not served; /metrics has {served:?}");
        }
    }
}

#[test]
fn series_named_skips_label_values_and_functions() {
    let expr = r#"sum by (rpc) (rate(ledger_request_errors_total{rpc=~"ledger.v1.PointsService/.*"}[5m])) / ledger_log_sequence"#;
    let named: Vec<String> = series_named(expr).into_iter().collect();
    assert_eq!(named, ["ledger_log_sequence", "ledger_request_errors_total"]);
}
