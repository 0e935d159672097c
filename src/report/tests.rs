//! Unit tests of the report: escaping, the fullest window, the outage
//! bands, the time axis.

use super::chart::tick_step;
use super::html::esc;
use super::model::{max_window, outages, Outage};
use ipnet::IpNet;
use std::collections::{BTreeMap, HashMap};

#[test]
fn escape_makes_markup_inert() {
    assert_eq!(
        esc("<script>alert('x')</script> & \"q\""),
        "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
    );
    assert_eq!(esc("a\u{1b}b"), "a\\u{1b}b");
    assert_eq!(esc("/café"), "/café");
}

#[test]
fn fullest_window_slides_over_sparse_buckets() {
    let b: BTreeMap<i64, u32> = [(0, 5), (1, 5), (6, 10), (7, 3), (20, 1)].into();
    assert_eq!(max_window(&b, 6), (15, 6)); // buckets 1..=6
    assert_eq!(max_window(&b, 8), (23, 7)); // buckets 0..=7
    assert_eq!(max_window(&b, 1), (10, 6));
}

#[test]
fn outages_merge_consecutive_minutes_of_a_section() {
    let ip = |i: u8| IpNet::from(std::net::IpAddr::from([192, 0, 2, i]));
    let clients = |n: u8| (1..=n).map(ip).collect::<Vec<_>>();
    let failing: HashMap<(i64, String), Vec<IpNet>> = [
        ((10, "/api/*"), clients(3)),
        ((11, "/api/*"), clients(5)),
        ((12, "/api/*"), clients(2)), // too few: ends the band
        ((13, "/api/*"), clients(4)),
        ((11, "/*"), clients(3)),
        ((20, "/x/*"), clients(1)),
    ]
    .into_iter()
    .map(|((m, s), c)| ((m, s.to_string()), c))
    .collect();
    let o = |section: &str, from, to, clients| Outage {
        section: section.into(),
        from,
        to,
        clients,
    };
    assert_eq!(
        outages(&failing, 3),
        vec![
            o("/api/*", 10, 11, 5),
            o("/*", 11, 11, 3),
            o("/api/*", 13, 13, 4)
        ]
    );
    assert_eq!(outages(&failing, 5), vec![o("/api/*", 11, 11, 5)]);
}

#[test]
fn ticks_stay_readable() {
    assert_eq!(tick_step(15 * 60_000), 2 * 60_000);
    assert_eq!(tick_step(24 * 3_600_000), 120 * 60_000);
}
