//! The actors: who requests what, when. Each function documents the
//! real-world behaviour it imitates and where its numbers come from.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use super::rng::Rng;
use super::site::{
    pick_browser, Fam, Intent, Site, BROWSERS, COMMON, EXPLOITS, SEARCH_TERMS, WP_PLUGINS,
};
use super::{Actor, Client, Emitter, Expect, Req, Scenario};

const SEC: i64 = 1_000_000;
const MIN: i64 = 60 * SEC;

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

fn net32(ip: IpAddr) -> IpNet {
    match ip {
        IpAddr::V4(a) => IpNet::V4(Ipv4Net::new(a, 32).expect("valid /32")),
        IpAddr::V6(a) => IpNet::V6(Ipv6Net::new(a, 128).expect("valid /128")),
    }
}

/// The /64 an IPv6 address lies in.
fn net64(ip: Ipv6Addr) -> IpNet {
    IpNet::V6(Ipv6Net::new(ip, 64).expect("valid /64").trunc())
}

fn v6(prefix: [u16; 4], iid: u64) -> Ipv6Addr {
    Ipv6Addr::new(
        prefix[0],
        prefix[1],
        prefix[2],
        prefix[3],
        (iid >> 48) as u16,
        (iid >> 32) as u16,
        (iid >> 16) as u16,
        iid as u16,
    )
}

/// Shared state of the generation: the actor table and all requests.
struct World<'a> {
    s: &'a Scenario,
    site: &'a Site,
    start: i64,
    end: i64,
    actors: Vec<Actor>,
    reqs: Vec<Req>,
    used_v4: HashSet<IpAddr>,
    used_v6: HashSet<u16>,
}

impl<'a> World<'a> {
    /// Absolute µs time at `minute` of a 60-minute hour, scaled to the
    /// scenario's duration.
    fn at(&self, minute: f64) -> i64 {
        self.start + ((self.end - self.start) as f64 * minute / 60.0) as i64
    }

    fn add(
        &mut self,
        name: String,
        kind: &'static str,
        networks: Vec<IpNet>,
        expect: Expect,
        description: &str,
    ) -> Emitter<'a> {
        let idx = self.actors.len();
        let rng = Rng::stream(self.s.seed, &name);
        self.actors.push(Actor {
            name,
            kind,
            networks,
            expect,
            description: description.to_string(),
        });
        Emitter {
            site: self.site,
            rng,
            reqs: Vec::new(),
            actor: idx,
            start_us: self.start,
            end_us: self.end,
        }
    }

    fn done(&mut self, em: Emitter<'_>) {
        self.reqs.extend(em.reqs);
    }

    /// A fresh residential IPv4 address (172.20.0.0/14, never reused).
    fn user_v4(&mut self, rng: &mut Rng) -> IpAddr {
        loop {
            let ip = v4(
                172,
                20 + rng.below(4) as u8,
                rng.below(256) as u8,
                1 + rng.below(254) as u8,
            );
            if self.used_v4.insert(ip) {
                return ip;
            }
        }
    }

    /// A fresh residential IPv6 /64 in 2001:db8:1000::/48 (privacy address).
    fn user_v6(&mut self, rng: &mut Rng) -> Ipv6Addr {
        loop {
            let sub = rng.below(0xff00) as u16;
            if self.used_v6.insert(sub) {
                return v6([0x2001, 0xdb8, 0x1000, sub], rng.next_u64() | 1);
            }
        }
    }
}

// ================================================================= shoppers

/// A person in a browser.
struct Shopper {
    c: Client,
    fam: Fam,
    cached: HashSet<String>,
    favicon_done: bool,
    touch_done: bool,
    logged_in: bool,
    /// Mistypes the password this many times before getting it right.
    mistypes: u32,
    /// A broken route the page's script requests on every view (spa-broken).
    broken: Option<&'static str>,
    /// Reload every 2–5 s during an outage for this long (outage-retrier).
    retry_for: i64,
}

impl Shopper {
    fn new(rng: &mut Rng, ip: IpAddr) -> Self {
        let (ua, fam) = pick_browser(rng);
        let mut c = Client::new(ip, ua, 6);
        c.recv = 520 + rng.below(500) as u32; // cookies, accept headers
        Shopper {
            c,
            fam,
            cached: HashSet::new(),
            favicon_done: false,
            touch_done: false,
            logged_in: false,
            mistypes: if rng.chance(0.10) {
                1 + rng.below(3) as u32
            } else {
                0
            },
            broken: None,
            retry_for: 0,
        }
    }

    /// A new visit: connections are gone; the HTTP cache survives (assets
    /// have a long max-age), the favicon check happens again.
    fn new_session(&mut self) {
        self.c.reset();
        self.favicon_done = false;
        self.touch_done = false;
    }
}

// Page indices in `Site::pages` (see `Site::new`).
const HOME: usize = 0;
const CATS: std::ops::Range<usize> = 1..11;
const PRODS: std::ops::Range<usize> = 11..41;
const INFO: std::ops::Range<usize> = 41..50;
const BLOG: usize = 50;
const POSTS: std::ops::Range<usize> = 51..59;
const CART: usize = 59;

fn in_range(rng: &mut Rng, r: std::ops::Range<usize>) -> usize {
    r.start + rng.below((r.end - r.start) as u64) as usize
}

/// Load a page the way a browser does: the HTML, then within ~1 s the
/// assets it has not cached (on a reload it revalidates them: 304), the
/// favicon, and the page's XHR calls. Returns (time the page finished, the
/// page's status).
fn view(
    em: &mut Emitter<'_>,
    sh: &mut Shopper,
    t: i64,
    page: usize,
    path: &str,
    reload: bool,
) -> (i64, u16) {
    let site = em.site;
    let out = em.send(&mut sh.c, t, "GET", path, Intent::Auto);
    let html_done = t + i64::from(out.times[1].max(0)) * 1000 + em.rng.range(20_000, 120_000);
    let pg = &site.pages[page];
    let mut last = html_done;
    let mut k = 0i64;
    for a in &pg.assets {
        let cached = sh.cached.contains(a);
        // Chromium and Safari reload only the main resource and take
        // subresources from the cache; Firefox revalidates them (304).
        if cached && !(reload && sh.fam == Fam::Firefox) {
            continue;
        }
        let intent = if cached {
            Intent::Revalidate
        } else {
            Intent::Auto
        };
        // Six parallel connections: assets arrive in waves within ~1 s.
        let at = html_done + k / 6 * em.rng.range(60_000, 250_000) + em.rng.range(0, 90_000);
        k += 1;
        let o = em.send(&mut sh.c, at, "GET", a, intent);
        if o.elb == 200 {
            sh.cached.insert(a.clone());
        }
        last = last.max(at);
    }
    // Firefox asks again on every page while the favicon 404s; Chromium
    // and Safari remember the failure for the session.
    if sh.fam == Fam::Firefox || !sh.favicon_done {
        sh.favicon_done = true;
        let at = last + em.rng.range(5_000, 200_000);
        em.send(&mut sh.c, at, "GET", "/favicon.ico", Intent::Auto);
    }
    if sh.fam == Fam::Safari && !sh.touch_done {
        sh.touch_done = true;
        if em.rng.chance(0.5) {
            let at = last + em.rng.range(50_000, 400_000);
            em.send(
                &mut sh.c,
                at,
                "GET",
                "/apple-touch-icon-precomposed.png",
                Intent::Auto,
            );
            em.send(
                &mut sh.c,
                at + 30_000,
                "GET",
                "/apple-touch-icon.png",
                Intent::Auto,
            );
        }
    }
    for api in &pg.api {
        let at = last + em.rng.range(100_000, 1_200_000);
        em.send(&mut sh.c, at, "GET", api, Intent::Auto);
        last = last.max(at);
    }
    if let Some(b) = sh.broken {
        // A stale service worker / broken client route: requested on
        // every navigation; the preferences call retries twice (axios-retry).
        let tries = if b.starts_with("/api/") { 3 } else { 1 };
        let mut at = last + em.rng.range(50_000, 500_000);
        for i in 0..tries {
            em.send(&mut sh.c, at, "GET", b, Intent::Auto);
            at += (1 << i) * SEC + em.rng.range(0, 200_000);
        }
        last = last.max(at);
    }
    (last, out.elb)
}

/// Log in: GET the form, type, POST. A mistyper gets 401s first.
fn login(em: &mut Emitter<'_>, sh: &mut Shopper, mut t: i64) -> i64 {
    em.send(&mut sh.c, t, "GET", "/login", Intent::Auto);
    t += em.rng.range(6, 25) * SEC;
    for _ in 0..sh.mistypes {
        em.send(&mut sh.c, t, "POST", "/login", Intent::Status(401));
        t += em.rng.range(4, 15) * SEC;
    }
    if sh.mistypes >= 3 && em.rng.chance(0.3) {
        em.send(&mut sh.c, t, "GET", "/password-reset", Intent::Auto);
        sh.mistypes = 0;
        return t + em.rng.range(20, 60) * SEC;
    }
    sh.mistypes = 0; // the password manager remembers it now
    let o = em.send(&mut sh.c, t, "POST", "/login", Intent::Status(302));
    if o.elb == 302 {
        sh.logged_in = true;
        t += em.rng.range(200_000, 600_000);
        em.send(&mut sh.c, t, "GET", "/account", Intent::Status(200));
    }
    t + em.rng.range(5, 30) * SEC
}

fn next_page(rng: &mut Rng, cur: usize) -> usize {
    let r = rng.f64();
    if cur == HOME {
        if r < 0.55 {
            in_range(rng, CATS)
        } else if r < 0.85 {
            in_range(rng, PRODS)
        } else if r < 0.93 {
            BLOG
        } else {
            in_range(rng, INFO)
        }
    } else if CATS.contains(&cur) {
        if r < 0.65 {
            in_range(rng, PRODS)
        } else if r < 0.85 {
            in_range(rng, CATS)
        } else {
            HOME
        }
    } else if PRODS.contains(&cur) {
        if r < 0.40 {
            in_range(rng, PRODS)
        } else if r < 0.65 {
            in_range(rng, CATS)
        } else if r < 0.80 {
            CART
        } else if r < 0.90 {
            HOME
        } else {
            in_range(rng, INFO)
        }
    } else if cur == BLOG || POSTS.contains(&cur) {
        if r < 0.6 {
            in_range(rng, POSTS)
        } else if r < 0.8 {
            BLOG
        } else {
            in_range(rng, PRODS)
        }
    } else if r < 0.5 {
        HOME
    } else {
        in_range(rng, PRODS)
    }
}

fn entry_page(rng: &mut Rng) -> usize {
    match rng.weighted(&[40, 30, 18, 7, 5]) {
        0 => HOME,
        1 => in_range(rng, PRODS),
        2 => in_range(rng, CATS),
        3 => in_range(rng, POSTS),
        _ => in_range(rng, INFO),
    }
}

/// One visit of `pages` page views, starting at `t`. Returns its end.
fn session(em: &mut Emitter<'_>, sh: &mut Shopper, mut t: i64, pages: u32) -> i64 {
    sh.new_session();
    let mut page = entry_page(&mut em.rng);
    let wants_login = em.rng.chance(if sh.mistypes > 0 { 0.9 } else { 0.2 });
    let login_at = em.rng.below(u64::from(pages)) as u32;
    for i in 0..pages {
        if t >= em.end_us {
            break;
        }
        if wants_login && i == login_at && !sh.logged_in {
            t = login(em, sh, t);
        }
        // 8% of navigations are a search instead.
        let (path, asset_page) = if i > 0 && em.rng.chance(0.08) {
            let q = *em.rng.pick(&SEARCH_TERMS);
            (format!("/search?q={q}"), CATS.start)
        } else {
            (em.site.pages[page].path.clone(), page)
        };
        let (done, status) = view(em, sh, t, asset_page, &path, false);
        t = done;
        if status >= 500 {
            if sh.retry_for > 0 {
                // The heavy retrier: reload every 2–5 s until it works or
                // patience runs out.
                let give_up = t + sh.retry_for;
                let mut st = status;
                while st >= 500 && t < give_up && t < em.end_us {
                    t += em.rng.range(2 * SEC, 5 * SEC);
                    let (d, s2) = view(em, sh, t, asset_page, &path, true);
                    t = d;
                    st = s2;
                }
                if st >= 500 {
                    return t;
                }
            } else {
                // An ordinary visitor reloads a couple of times, then leaves.
                let reloads = em.rng.weighted(&[40, 30, 20, 10]);
                for _ in 0..reloads {
                    t += em.rng.range(3 * SEC, 12 * SEC);
                    let (d, s2) = view(em, sh, t, asset_page, &path, true);
                    t = d;
                    if s2 < 500 {
                        break;
                    }
                }
                return t;
            }
        }
        if PRODS.contains(&page) && em.rng.chance(0.15) {
            t += em.rng.range(2 * SEC, 15 * SEC);
            em.send(&mut sh.c, t, "POST", "/api/v1/cart", Intent::Auto);
        }
        t += (em.rng.log_uniform(5.0, 90.0) * SEC as f64) as i64;
        page = next_page(&mut em.rng, page);
    }
    t
}

/// Page views per visit: heavy-tailed, 1–20, median ~3 (web analytics
/// typically report 3–5 pages per session with a long tail).
fn session_len(rng: &mut Rng) -> u32 {
    let mut n = 1;
    while n < 20 && rng.chance(0.78) {
        n += 1;
    }
    n
}

/// A person's visits during the hour: usually one, sometimes a second
/// later on. Sessions may already be running when the period starts.
fn browse_hour(em: &mut Emitter<'_>, sh: &mut Shopper) {
    let span = em.end_us - em.start_us;
    let mut t = em.start_us - 10 * MIN + em.rng.below((span + 10 * MIN) as u64) as i64;
    let visits = if em.rng.chance(0.2) { 2 } else { 1 };
    for _ in 0..visits {
        let n = session_len(&mut em.rng);
        let end = session(em, sh, t, n);
        t = end + em.rng.range(5 * MIN, 30 * MIN);
        if t >= em.end_us {
            break;
        }
    }
}

const USER_DESC: &str = "A shopper in a real browser (UA mix of late-2025 Chrome/Safari/Edge/Firefox/Samsung). 1-2 visits of 1-20 page views (heavy-tailed, median ~3), think time 5-90 s log-uniform. Each page loads its uncached assets (5 shared css/js/font/logo + page images) within ~1 s over up to 6 keep-alive connections, then its XHR calls. Gets the site's genuine 404s: /favicon.ico (Firefox on every page, others once per visit), /apple-touch-icon*.png (Safari), the broken banner on the home page. 10% mistype the password 1-3 times (401). 0.1% of app requests fail with 500. During the outage: 5xx, reloads 0-3 times, leaves.";

// ================================================================= generation

pub(crate) fn generate(s: &Scenario, site: &Site, start: i64, end: i64) -> (Vec<Actor>, Vec<Req>) {
    let mut w = World {
        s,
        site,
        start,
        end,
        actors: Vec::new(),
        reqs: Vec::new(),
        used_v4: HashSet::new(),
        used_v6: HashSet::new(),
    };
    let mut addr_rng = Rng::stream(s.seed, "addresses");
    users(&mut w, &mut addr_rng);
    nats(&mut w);
    crawlers(&mut w);
    monitors(&mut w);
    pollers(&mut w, &mut addr_rng);
    spa_broken(&mut w, &mut addr_rng);
    retriers(&mut w, &mut addr_rng);
    scanners_fast(&mut w);
    nikto(&mut w);
    scanner_slow(&mut w);
    wpscan(&mut w);
    stuffers(&mut w);
    fuzzer(&mut w);
    ipv6_rotator(&mut w);
    subnet_scanner(&mut w);
    extra_scanners(&mut w);
    cgnat(&mut w);
    thin_scan(&mut w);
    (w.actors, w.reqs)
}

/// `user` ×N: 20% on IPv6 (each its own /64), plus one household /64 with
/// three devices (phone, laptop, tablet) browsing independently.
fn users(w: &mut World<'_>, ar: &mut Rng) {
    for i in 0..w.s.users {
        let ip = if ar.chance(0.2) {
            IpAddr::V6(w.user_v6(ar))
        } else {
            w.user_v4(ar)
        };
        let net = match ip {
            IpAddr::V6(a) => net64(a),
            a => net32(a),
        };
        let mut em = w.add(
            format!("user-{i:03}"),
            "user",
            vec![net],
            Expect::Allow,
            USER_DESC,
        );
        let mut sh = Shopper::new(&mut em.rng, ip);
        browse_hour(&mut em, &mut sh);
        w.done(em);
    }
    let prefix = [0x2001, 0xdb8, 0x1000, 0xff01];
    let net = net64(v6(prefix, 0));
    let mut em = w.add(
        "user-household".into(),
        "user",
        vec![net],
        Expect::Allow,
        "A household /64 (home router with IPv6 prefix delegation) with three devices, each with its own privacy address, browsing independently like `user`. A detector folding IPv6 to /64 sees their sum.",
    );
    for _ in 0..3 {
        let iid = em.rng.next_u64() | 1;
        let mut sh = Shopper::new(&mut em.rng, IpAddr::V6(v6(prefix, iid)));
        browse_hour(&mut em, &mut sh);
        browse_hour(&mut em, &mut sh);
    }
    w.done(em);
}

/// `nat` ×2: corporate egress NAT addresses; all their people browse like
/// `user` from one address (source ports 1024–65535), so every favicon 404,
/// broken banner and mistyped password of the office adds up on one key.
fn nats(w: &mut World<'_>) {
    for (i, ip) in [v4(192, 0, 2, 10), v4(192, 0, 2, 77)]
        .into_iter()
        .enumerate()
    {
        let desc = format!(
            "Corporate NAT egress address carrying {} people who each browse like `user` (their sessions overlap, including all their 404s, 401s and outage reloads).",
            w.s.nat_users
        );
        let mut em = w.add(
            format!("nat-{i}"),
            "nat",
            vec![net32(ip)],
            Expect::Allow,
            &desc,
        );
        for _ in 0..w.s.nat_users {
            let mut sh = Shopper::new(&mut em.rng, ip);
            sh.c.ports = (1024, 65_535);
            browse_hour(&mut em, &mut sh);
        }
        w.done(em);
    }
}

/// `crawler` ×3. Googlebot (over IPv6), Bingbot, and YandexBot following a
/// stale sitemap. One fetch every 1–4 s, pages only (no assets), URLs from
/// faceted navigation (thousands of distinct category?page&sort&color
/// combinations), products, blog, plus dead links to discontinued products
/// and old blog URLs (404) and legacy `/shop/*` links the ALB redirects
/// (301, then the target is fetched a few seconds later). robots.txt first.
/// On a 5xx they back off (Google documents slowing down on 5xx/timeouts):
/// the next interval is 4–8× longer.
fn crawlers(w: &mut World<'_>) {
    let specs: [(&str, IpAddr, IpNet, &str, f64); 3] = {
        let g = v6([0x2001, 0xdb8, 0x4860, 0x4801], 0x0000_0000_0000_0035);
        [
            ("crawler-googlebot", IpAddr::V6(g), net64(g), "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", 0.12),
            ("crawler-bingbot", v4(198, 51, 100, 21), net32(v4(198, 51, 100, 21)), "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm) Chrome/131.0.0.0 Safari/537.36", 0.20),
            ("crawler-yandex-stale-sitemap", v4(198, 51, 100, 22), net32(v4(198, 51, 100, 22)), "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)", 0.40),
        ]
    };
    const COLORS: [&str; 8] = [
        "black", "navy", "olive", "red", "grey", "white", "blue", "green",
    ];
    const SORTS: [&str; 4] = ["popular", "price-asc", "price-desc", "new"];
    const WORDS: [&str; 12] = [
        "summer", "winter", "guide", "tips", "news", "launch", "sale", "story", "care", "style",
        "travel", "gift",
    ];
    for (name, ip, net, ua, dead) in specs {
        let desc = format!(
            "Search-engine crawler ({}) fetching one page every 1-4 s all hour over thousands of distinct URLs; {:.0}% dead links (404), some legacy links redirected by the ALB (301); backs off on 5xx.",
            ua, dead * 100.0
        );
        let mut em = w.add(name.to_string(), "crawler", vec![net], Expect::Allow, &desc);
        let mut c = Client::new(ip, ua, 2);
        c.recv = 260;
        let mut t = em.start_us + em.rng.range(0, 20 * SEC);
        em.send(&mut c, t, "GET", "/robots.txt", Intent::Auto);
        let mut backoff = 1.0f64;
        let mut follow: Option<String> = None;
        while t < em.end_us {
            t += (em.rng.uniform(1.0, 4.0) * backoff * SEC as f64) as i64;
            backoff = (backoff * 0.8).max(1.0);
            let path = if let Some(p) = follow.take() {
                p
            } else {
                let r = em.rng.f64();
                if r < dead {
                    match em.rng.weighted(&[5, 3, 2]) {
                        0 => format!("/products/{}", em.rng.pick(&em.site.dead_products)),
                        1 => format!(
                            "/blog/20{}/{}-{}-{}",
                            em.rng.range(15, 23),
                            em.rng.pick(&WORDS),
                            em.rng.pick(&WORDS),
                            em.rng.range(1, 40)
                        ),
                        _ => format!("/p/{}", em.rng.range(100, 9999)),
                    }
                } else if r < dead + 0.05 {
                    format!("/shop/{}", em.rng.pick(&em.site.products))
                } else {
                    match em.rng.weighted(&[50, 20, 8, 4, 3]) {
                        0 => {
                            let cat = *em.rng.pick(&em.site.categories);
                            let mut p = format!("/category/{cat}?page={}", em.rng.range(1, 40));
                            if em.rng.chance(0.6) {
                                p.push_str(&format!("&sort={}", em.rng.pick(&SORTS)));
                            }
                            if em.rng.chance(0.5) {
                                p.push_str(&format!("&color={}", em.rng.pick(&COLORS)));
                            }
                            p
                        }
                        1 => {
                            let p = *em.rng.pick(&em.site.products);
                            if em.rng.chance(0.5) {
                                format!("/products/{p}?color={}", em.rng.pick(&COLORS))
                            } else {
                                format!("/products/{p}")
                            }
                        }
                        2 => em.site.pages[em.rng.below(em.site.pages.len() as u64) as usize]
                            .path
                            .clone(),
                        3 => format!("/search?q={}", em.rng.pick(&SEARCH_TERMS)),
                        _ => "/sitemap.xml".to_string(),
                    }
                }
            };
            let o = em.send(&mut c, t, "GET", &path, Intent::Auto);
            if o.elb == 301 {
                if let super::site::Disp::Redirect(to) = &o.disp {
                    follow = Some(
                        to.trim_start_matches("http://shop.example.com:80")
                            .to_string(),
                    );
                }
            }
            if o.elb >= 500 {
                backoff = em.rng.uniform(4.0, 8.0);
            }
        }
        w.done(em);
    }
}

/// `monitor` ×4: uptime checks with fixed intervals and a little jitter,
/// a new connection each time.
#[allow(clippy::type_complexity)]
fn monitors(w: &mut World<'_>) {
    // (name, addresses, UA, path, interval s, description)
    let r53: Vec<IpAddr> = (0..4).map(|i| v4(198, 51, 100, 40 + i)).collect();
    let specs: Vec<(&str, Vec<IpAddr>, &str, &str, i64, &str)> = vec![
        ("monitor-route53", r53, "Amazon-Route53-Health-Check-Service (ref 4f6e1a2b-9c3d-4e5f-8a7b-6c5d4e3f2a1b; report http://amzn.to/1vsZADi)", "/health", 30,
         "Route 53 health checks from four checker regions, each GET /health every 30 s; the app's health endpoint returns 503-class errors during the outage."),
        ("monitor-uptimerobot", vec![v4(198, 51, 100, 50)], "Mozilla/5.0+(compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)", "/ping", 60,
         "UptimeRobot keyword-less check of /ping every 60 s (an ALB fixed-response rule: unaffected by the backend outage)."),
        ("monitor-pingdom", vec![v4(198, 51, 100, 51)], "Pingdom.com_bot_version_1.4_(http://www.pingdom.com/)", "/static/img/logo.svg", 45,
         "Pingdom check of a static file every 45 s (static target group, unaffected by the outage)."),
        ("monitor-datadog-wrong-path", vec![v4(198, 51, 100, 52)], "Datadog/Synthetics", "/static/status.html", 30,
         "Datadog synthetic test left pointing at a status page that was removed: 404 every 30 s, all hour, for ever."),
    ];
    for (name, ips, ua, path, every, desc) in specs {
        let nets = ips.iter().map(|&ip| net32(ip)).collect();
        let mut em = w.add(name.to_string(), "monitor", nets, Expect::Allow, desc);
        for ip in ips {
            let mut c = Client::new(ip, ua, 1);
            c.recv = 180;
            let mut t = em.start_us + em.rng.range(0, every * SEC);
            while t < em.end_us {
                c.reset();
                em.send(&mut c, t, "GET", path, Intent::Auto);
                t += every * SEC + em.rng.range(-1_500_000, 1_500_000);
            }
        }
        w.done(em);
    }
}

/// `poller` ×2: a single-page app left open in a tab after its token
/// expired; `setInterval` polls GET /api/v1/notifications every 10 s / 15 s
/// (± network jitter) and gets 401 for 25 / 40 minutes until the laptop
/// sleeps. Nobody reloads the tab.
fn pollers(w: &mut World<'_>, ar: &mut Rng) {
    for (i, (every, mins, from)) in [(10i64, 25.0, 4.0), (15, 40.0, 15.0)]
        .into_iter()
        .enumerate()
    {
        let ip = w.user_v4(ar);
        let desc = format!("Single-page app with an expired token polling GET /api/v1/notifications every {every} s and getting 401 for {mins} minutes.");
        let mut em = w.add(
            format!("poller-{i}"),
            "poller",
            vec![net32(ip)],
            Expect::Allow,
            &desc,
        );
        let (ua, _) = pick_browser(&mut em.rng);
        let mut c = Client::new(ip, ua, 6);
        c.recv = 700;
        let mut t = w.at(from);
        let stop = t + (mins * MIN as f64) as i64;
        while t < stop.min(em.end_us) {
            em.send(
                &mut c,
                t,
                "GET",
                "/api/v1/notifications",
                Intent::Status(401),
            );
            t += every * SEC + em.rng.range(-200_000, 300_000);
        }
        w.done(em);
    }
}

/// `spa-broken` ×2: normal long browsing, but the client requests a broken
/// route on every navigation: a stale service-worker registration
/// re-checking `/sw.js`, and a front-end calling a removed
/// `/api/v1/me/preferences` endpoint with two retries.
fn spa_broken(w: &mut World<'_>, ar: &mut Rng) {
    for (i, route) in ["/sw.js", "/api/v1/me/preferences"].into_iter().enumerate() {
        let ip = w.user_v4(ar);
        let desc = format!("Browses normally (2 visits of up to 20 pages) but its client requests the broken route {route} (404) on every page view.");
        let mut em = w.add(
            format!("spa-broken-{i}"),
            "spa-broken",
            vec![net32(ip)],
            Expect::Allow,
            &desc,
        );
        let mut sh = Shopper::new(&mut em.rng, ip);
        sh.broken = Some(route);
        let mut t = w.at(5.0 + 35.0 * i as f64);
        for _ in 0..2 {
            let n = em.rng.range(12, 20) as u32;
            t = session(&mut em, &mut sh, t, n) + em.rng.range(2 * MIN, 8 * MIN);
        }
        w.done(em);
    }
}

/// `outage-retrier` ×4: shoppers mid-visit when the backend fails who hit
/// reload every 2–5 s for 1.5
/// to 6 minutes; one keeps going for the whole outage. Two use Firefox,
/// which revalidates every asset on reload (304s), two Chrome/Safari, which
/// re-request only the page.
fn retriers(w: &mut World<'_>, ar: &mut Rng) {
    let Some((a, b)) = w.site.outage else { return };
    for i in 0..4 {
        let ip = if i == 3 {
            IpAddr::V6(w.user_v6(ar))
        } else {
            w.user_v4(ar)
        };
        let net = match ip {
            IpAddr::V6(x) => net64(x),
            x => net32(x),
        };
        let mut em = w.add(
            format!("outage-retrier-{i}"),
            "outage-retrier",
            vec![net],
            Expect::Allow,
            "A shopper who is mid-visit when the backend fails and reloads every 2-5 s (page 5xx; Firefox also revalidates the assets: 304) until it works or patience runs out (1.5-6 min).",
        );
        let mut sh = Shopper::new(&mut em.rng, ip);
        if i % 2 == 0 {
            sh.c.ua =
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"
                    .into();
            sh.fam = Fam::Firefox;
        } else {
            sh.c.ua = BROWSERS[0].0.into();
            sh.fam = Fam::Chromium;
        }
        sh.retry_for = if i == 0 {
            b - a
        } else {
            em.rng.range(90 * SEC, 6 * MIN)
        };
        let t = a - em.rng.range(2 * MIN, 5 * MIN) + i64::from(i) * 40 * SEC;
        let end = session(&mut em, &mut sh, t, 20);
        // Comes back after the outage and finishes shopping.
        if end < em.end_us {
            let back = end.max(b) + em.rng.range(SEC, 3 * MIN);
            session(&mut em, &mut sh, back, 4);
        }
        w.done(em);
    }
}

// ================================================================= attackers

/// Tool-style requests: Poisson arrivals at `rate` req/s with occasional
/// stalls (network hiccups, tool output flushes).
fn tool_gap(rng: &mut Rng, rate: f64) -> i64 {
    let mut g = rng.exp(1.0 / rate);
    if rng.chance(0.002) {
        g += rng.uniform(0.5, 2.5);
    }
    (g * SEC as f64) as i64
}

/// A dirbuster-style list: the common entries plus generated directory
/// variants (`backup_old`, `admin2021`, ...) as in SecLists raft lists.
fn dir_words() -> Vec<String> {
    const BASE: [&str; 30] = [
        "admin", "backup", "config", "db", "old", "test", "dev", "api", "user", "upload", "data",
        "site", "web", "app", "file", "log", "tmp", "temp", "private", "public", "img", "assets",
        "media", "cache", "secure", "portal", "panel", "account", "shop", "store",
    ];
    const SUF: [&str; 20] = [
        "s", "1", "2", "_old", "-old", ".old", "_bak", "-backup", "_backup", "2019", "2020",
        "2021", "2022", "2023", "2024", "_new", "-dev", "-test", "_files", "_tmp",
    ];
    let mut v: Vec<String> = COMMON.iter().map(|s| s.to_string()).collect();
    for b in BASE {
        for s in SUF {
            v.push(format!("{b}{s}"));
        }
    }
    v.sort();
    v.dedup();
    v
}

/// `scanner-fast` ×2: gobuster and ffuf walking a directory list with
/// extensions. gobuster's 10 default threads give ~25 req/s against a
/// nearby origin; ffuf with `-rate 20` and a faked Chrome UA (`-H`).
/// Both start with a wildcard check on a random UUID path. ~97% 404; the
/// real directories give 301/302/403/200.
#[allow(clippy::type_complexity)]
fn scanners_fast(w: &mut World<'_>) {
    let words = dir_words();
    let specs: [(&str, IpAddr, IpNet, &str, f64, &[&str], usize, f64); 2] = {
        let f = v6([0x2001, 0xdb8, 0xbad, 3], 0xa);
        [
            ("scanner-fast-gobuster", v4(198, 51, 100, 201), net32(v4(198, 51, 100, 201)), "gobuster/3.6", 25.0, &["", ".php", ".txt", ".bak"], 10, 8.0),
            ("scanner-fast-ffuf", IpAddr::V6(f), net64(f), "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", 20.0, &["", ".php", ".zip"], 40, 37.5),
        ]
    };
    for (name, ip, net, ua, rate, exts, threads, minute) in specs {
        let desc = format!(
            "Directory brute force ({}) at ~{rate} req/s: {} words x extensions {:?} (~{} requests, 2-4 minutes), starting minute {minute}. ~97% 404, a few 301/302/403/200.",
            if name.ends_with("gobuster") { "gobuster dir, UA gobuster/3.6" } else { "ffuf -rate 20 with a faked Chrome user agent" },
            words.len(),
            exts,
            words.len() * exts.len()
        );
        let mut em = w.add(
            name.to_string(),
            "scanner-fast",
            vec![net],
            Expect::Block,
            &desc,
        );
        let mut c = Client::new(ip, ua, threads);
        c.recv = 130;
        let mut t = w.at(minute);
        let uuid = format!("/{:032x}", em.rng.u128());
        em.send(&mut c, t, "GET", &uuid, Intent::Auto);
        for wd in &words {
            for e in exts {
                t += tool_gap(&mut em.rng, rate);
                em.send(&mut c, t, "GET", &format!("/{wd}{e}"), Intent::Auto);
            }
        }
        w.done(em);
    }
}

/// `scanner-nikto`: nikto 2.5 with `-maxtime 3m` at 5–10 req/s. Its UA
/// carries the test id. Mostly 404 file checks; malformed request lines
/// (ALB 400, `"- http://host:80- -"`); OPTIONS/TRACE/TRACK/PROPFIND
/// (PROPFIND is blocked by the WAF's known-bad-inputs rules); dotfiles and
/// server-status (403); XSS/traversal probes in the query of real pages (200).
fn nikto(w: &mut World<'_>) {
    let ip = v4(198, 51, 100, 202);
    let mut em = w.add(
        "scanner-nikto".into(),
        "scanner-nikto",
        vec![net32(ip)],
        Expect::Block,
        "nikto 2.5 (-maxtime 3m) at 5-10 req/s from minute 22: mostly 404 checks for known files, ~7% malformed request lines (ALB 400), odd methods (OPTIONS 204, TRACE/TRACK 405, PROPFIND blocked by WAF), dotfiles/server-status 403, query probes on real pages 200. UA carries the test id.",
    );
    let mut c = Client::new(ip, "", 8);
    c.recv = 180;
    let mut t = w.at(22.0);
    let stop = t + 3 * MIN;
    const DIRS: [&str; 14] = [
        "",
        "cgi-bin/",
        "scripts/",
        "admin/",
        "manual/",
        "docs/",
        "servlet/",
        "iisadmin/",
        "phpmyadmin/",
        "includes/",
        "webdav/",
        "jsp/",
        "examples/",
        "_vti_bin/",
    ];
    const FILES: [&str; 18] = [
        "test-cgi",
        "printenv",
        "index.php.bak",
        "login.asp",
        "default.aspx",
        "config.inc",
        "global.asa",
        "web.config",
        "admin.cgi",
        "info.php",
        "shell.php",
        "upload.php",
        "htimage.exe",
        "phf",
        "snoop.jsp",
        "readme.txt",
        "install.txt",
        "changelog",
    ];
    let mut test = 0u32;
    while t < stop {
        t += tool_gap(&mut em.rng, 6.5);
        test += 1;
        c.ua = format!(
            "Mozilla/5.00 (Nikto/2.5.0) (Evasions:None) (Test:{:06})",
            1000 + test * 3
        );
        match em.rng.weighted(&[7, 6, 5, 6, 76]) {
            0 => em.malformed(&mut c, t),
            1 => {
                let m = *em.rng.pick(&["OPTIONS", "TRACE", "TRACK", "PROPFIND"]);
                em.send(&mut c, t, m, "/", Intent::Auto);
            }
            2 => {
                let p = *em
                    .rng
                    .pick(&["/.htaccess", "/.htpasswd", "/server-status", "/.ht"]);
                em.send(&mut c, t, "GET", p, Intent::Auto);
            }
            3 => {
                let page = *em.rng.pick(&["/", "/search", "/about", "/login"]);
                let probe = *em.rng.pick(&[
                    "?q=<script>alert(document.cookie)</script>",
                    "?\"><script>alert(1)</script>",
                    "?file=../../../../etc/passwd",
                    "?q=%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E",
                ]);
                em.send(&mut c, t, "GET", &format!("{page}{probe}"), Intent::Auto);
            }
            _ => {
                let p = if em.rng.chance(0.1) {
                    format!("/\"><script>alert({})</script>", em.rng.range(1, 9999))
                } else {
                    format!("/{}{}", em.rng.pick(&DIRS), em.rng.pick(&FILES))
                };
                em.send(&mut c, t, "GET", &p, Intent::Auto);
            }
        }
    }
    w.done(em);
}

/// `scanner-slow`: a patient scanner staying under rate limits: one request
/// every 3–10 s (uniform jitter) for 40 minutes, exploit and directory paths
/// with a look at the home page now and then, Chrome UA. ~90% 404.
fn scanner_slow(w: &mut World<'_>) {
    let ip = v4(198, 51, 100, 203);
    let mut em = w.add(
        "scanner-slow".into(),
        "scanner-slow",
        vec![net32(ip)],
        Expect::Block,
        "Low-and-slow scanner: one request every 3-10 s for 40 minutes from minute 5 (spans the outage), exploit/backup/admin paths, GET / every ~12 requests, browser UA. ~90% 404.",
    );
    let mut c = Client::new(ip, "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36", 1);
    let mut t = w.at(5.0);
    let stop = t + 40 * MIN;
    let words = dir_words();
    let mut i = 0usize;
    while t < stop {
        let p = if em.rng.chance(0.08) {
            "/".to_string()
        } else if i % 2 == 0 {
            EXPLOITS[(i / 2) % EXPLOITS.len()].to_string()
        } else {
            format!("/{}", words[(i * 7) % words.len()])
        };
        em.send(&mut c, t, "GET", &p, Intent::Auto);
        i += 1;
        t += em.rng.range(3 * SEC, 10 * SEC);
    }
    w.done(em);
}

/// `wp-scan`: wpscan 3.8 with `--force --enumerate ap,at --plugins-detection
/// aggressive` against a site that is not WordPress, over IPv6, 3–8 req/s
/// (5 threads), ~400 requests: core files, `?author=N` user enumeration
/// (200: the home page ignores the query), then `readme.txt` of each plugin.
fn wpscan(w: &mut World<'_>) {
    let ip = v6([0x2001, 0xdb8, 0xbad, 2], 0x1337);
    let mut em = w.add(
        "wp-scan".into(),
        "wp-scan",
        vec![net64(ip)],
        Expect::Block,
        "wpscan --force --enumerate ap,at --plugins-detection aggressive from minute 41 over IPv6: WP core files, ?author=N enumeration (200), then /wp-content/plugins/<slug>/readme.txt for a long plugin list: ~400 requests at 3-8 req/s (~80 s). Mostly 404.",
    );
    let mut c = Client::new(
        IpAddr::V6(ip),
        "WPScan v3.8.27 (https://wpscan.com/wordpress-security-scanner)",
        5,
    );
    c.recv = 200;
    let mut t = w.at(41.0);
    let stop = t + 4 * MIN;
    let mut paths: Vec<String> = [
        "/",
        "/robots.txt",
        "/readme.html",
        "/wp-login.php",
        "/xmlrpc.php",
        "/wp-json/",
        "/wp-json/wp/v2/users",
        "/wp-content/",
        "/wp-includes/",
        "/wp-cron.php",
        "/license.txt",
        "/wp-config.php.bak",
        "/wp-config.php~",
        "/.wp-config.php.swp",
        "/wp-content/debug.log",
        "/wp-content/uploads/",
        "/feed/",
        "/wp-links-opml.php",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for n in 1..=10 {
        paths.push(format!("/?author={n}"));
    }
    for th in [
        "twentytwentyfive",
        "twentytwentyfour",
        "twentytwentythree",
        "astra",
        "hello-elementor",
        "generatepress",
        "oceanwp",
        "kadence",
        "divi",
        "avada",
    ] {
        paths.push(format!("/wp-content/themes/{th}/style.css"));
    }
    for p in WP_PLUGINS {
        paths.push(format!("/wp-content/plugins/{p}/readme.txt"));
    }
    // The aggressive list goes on for tens of thousands of slugs.
    const A: [&str; 16] = [
        "wp",
        "simple",
        "easy",
        "ultimate",
        "advanced",
        "smart",
        "custom",
        "quick",
        "responsive",
        "social",
        "seo",
        "secure",
        "mobile",
        "ajax",
        "woo",
        "flexible",
    ];
    const B: [&str; 16] = [
        "gallery", "slider", "forms", "backup", "cache", "popup", "login", "map", "share", "table",
        "chat", "booking", "shop", "menu", "video", "calendar",
    ];
    for a in A {
        for b in B {
            paths.push(format!("/wp-content/plugins/{a}-{b}/readme.txt"));
        }
    }
    let rate = em.rng.uniform(4.0, 6.5);
    for p in &paths {
        if t >= stop {
            break;
        }
        em.send(&mut c, t, "GET", p, Intent::Auto);
        t += tool_gap(&mut em.rng, rate);
    }
    w.done(em);
}

/// `stuffer` and `stuffer-api`: credential stuffing.
fn stuffers(w: &mut World<'_>) {
    // OpenBullet/SentryMBA-style config: 1-5 req/s, a new browser UA per
    // attempt, a GET /login for a fresh CSRF token every ~15 attempts,
    // ~0.5% of the combo list works (302).
    let ip = v4(198, 51, 100, 204);
    let mut em = w.add(
        "stuffer".into(),
        "stuffer",
        vec![net32(ip)],
        Expect::Block,
        "Credential stuffing (OpenBullet-style) from minute 12 for 10 minutes: POST /login at 1-5 req/s -> 401, GET /login 200 for a CSRF token every ~15 attempts, a different browser UA per attempt, ~0.5% hits (302).",
    );
    let mut c = Client::new(ip, "", 20);
    let mut t = w.at(12.0);
    let stop = t + 10 * MIN;
    while t < stop {
        c.ua = BROWSERS[em.rng.below(BROWSERS.len() as u64) as usize]
            .0
            .to_string();
        if em.rng.chance(1.0 / 15.0) {
            em.send(&mut c, t, "GET", "/login", Intent::Auto);
            t += em.rng.range(100_000, 400_000);
        }
        let st = if em.rng.chance(0.005) { 302 } else { 401 };
        em.send(&mut c, t, "POST", "/login", Intent::Status(st));
        t += em.rng.range(200_000, 1_000_000);
    }
    w.done(em);

    // A script replaying combos against the mobile app's token endpoint.
    let ip = v4(198, 51, 100, 205);
    let mut em = w.add(
        "stuffer-api".into(),
        "stuffer-api",
        vec![net32(ip)],
        Expect::Block,
        "Credential stuffing against the mobile API from minute 47 for 5 minutes: POST /api/v1/auth/token -> 403 at ~2 req/s, UA okhttp/4.12.0 (impersonating the Android app).",
    );
    let mut c = Client::new(ip, "okhttp/4.12.0", 4);
    c.recv = 240;
    let mut t = w.at(47.0);
    let stop = t + 5 * MIN;
    while t < stop {
        em.send(&mut c, t, "POST", "/api/v1/auth/token", Intent::Status(403));
        t += em.rng.range(300_000, 700_000);
    }
    w.done(em);
}

/// `fuzzer`: sqlmap 1.8 (`--batch --level 3`) against `/products?id=` and
/// `/search?q=`: single-threaded, so the rate is set by the responses:
/// 2–5 req/s, slower during time-based tests (SLEEP(5)). Payloads
/// URL-encoded as sqlmap sends them. The injectable parameter breaks the
/// SQL on ~25% (500 from the target); input validation rejects some (400);
/// the WAF's managed SQLi rules block blatant UNION SELECTs (403 waf);
/// the rest 200. Minute 14–19, never during the outage.
fn fuzzer(w: &mut World<'_>) {
    let ip = v4(198, 51, 100, 206);
    let mut em = w.add(
        "fuzzer".into(),
        "fuzzer",
        vec![net32(ip)],
        Expect::Block,
        "sqlmap 1.8 (default UA) from minute 14 for 5 minutes on /products?id= and /search?q=: 2-5 req/s (single thread, time-based payloads sleep 5 s), ~25% 500, ~18% 400, ~8% blocked by WAF managed SQLi rules, rest 200.",
    );
    let mut c = Client::new(ip, "sqlmap/1.8.12#stable (https://sqlmap.org)", 1);
    c.recv = 210;
    let mut t = w.at(14.0);
    let mut stop = t + 5 * MIN;
    match em.site.outage {
        // Attacking while a route is down: the fuzzer's routes still work.
        Some((a, _)) if w.s.fuzzer_in_outage => {
            t = a + 20 * SEC;
            stop = t + 5 * MIN;
        }
        // Never during the outage: cut short before it, or, if that would
        // leave less than three minutes, after it.
        Some((a, b)) if t < b && stop > a - 30 * SEC => {
            if a - 30 * SEC - t >= 3 * MIN {
                stop = a - 30 * SEC;
            } else {
                t = b + 30 * SEC;
                stop = t + 5 * MIN;
            }
        }
        _ => {}
    }
    // (template, status; 0 = WAF decides, 1 = slow 200)
    const PAYLOADS: [(&str, u16, u32); 16] = [
        ("{id}%27", 500, 5),
        ("{id}%22", 500, 3),
        ("{id}%29%20AND%20%28{n}%3D{n}", 500, 4),
        ("{id}%27%20AND%20EXTRACTVALUE%28{n}%2CCONCAT%280x5c%2C0x7170766a71%2C%28SELECT%20%28ELT%28{n}%3D{n}%2C1%29%29%29%2C0x716b7a7a71%29%29--%20{s}", 500, 4),
        ("{id}%20AND%20{n}%3DCAST%28%28CHR%28113%29%7C%7CCHR%28118%29%29%3A%3Atext%20AS%20NUMERIC%29", 500, 3),
        ("{id}%27%29%20AND%20%28%27{s}%27%3D%27{s}", 500, 3),
        ("{id}", 200, 8),
        ("{id}%20AND%20{n}%3D{n}", 200, 10),
        ("{id}%20AND%20{n}%3D{m}", 200, 10),
        ("{id}%20ORDER%20BY%20{k}--%20{s}", 200, 6),
        ("{id}%20AND%20SLEEP%285%29", 1, 3),
        ("{id}%20AND%20%28SELECT%20{n}%20FROM%20%28SELECT%28SLEEP%285%29%29%29{s}%29", 1, 3),
        ("{s}", 400, 6),
        ("{id}.{n}", 400, 5),
        ("-{n}%20OR%20{n}%3D{n}%23", 400, 6),
        ("{id}%20UNION%20ALL%20SELECT%20NULL%2CNULL%2CNULL--%20{s}", 0, 8),
    ];
    let weights: Vec<u32> = PAYLOADS.iter().map(|p| p.2).collect();
    while t < stop {
        let (tpl, st, _) = PAYLOADS[em.rng.weighted(&weights)];
        let s: String = (0..4)
            .map(|_| (b'a' + em.rng.below(26) as u8) as char)
            .collect();
        let payload = tpl
            .replace("{id}", &em.rng.range(1001, 1030).to_string())
            .replace("{n}", &em.rng.range(1000, 9999).to_string())
            .replace("{m}", &em.rng.range(1000, 9999).to_string())
            .replace("{k}", &em.rng.range(1, 12).to_string())
            .replace("{s}", &s);
        let path = if em.rng.chance(0.3) {
            format!("/search?q={payload}")
        } else {
            format!("/products?id={payload}")
        };
        let intent = match st {
            0 => Intent::Auto,
            1 => Intent::Slow(200, 5_000 + em.rng.range(10, 80) as i32),
            // /search takes any text: only the SQL-breaking ones fail there.
            400 if path.starts_with("/search") => Intent::Status(200),
            s => Intent::Status(s),
        };
        let o = em.send(&mut c, t, "GET", &path, intent);
        t += i64::from(o.times[1].max(0)) * 1000 + em.rng.range(80_000, 400_000);
    }
    w.done(em);
}

/// `ipv6-rotator`: a scanner on a host with a routed /64 binding a fresh
/// random source address for every request (trivial with IPv6 and e.g.
/// `ip -6 addr add` or freebind), 5 req/s, Go HTTP client, directory and
/// exploit paths. Only the /64 ties the requests together.
fn ipv6_rotator(w: &mut World<'_>) {
    let prefix = [0x2001, 0xdb8, 0xbad, 1];
    let mut em = w.add(
        "ipv6-rotator".into(),
        "ipv6-rotator",
        vec![net64(v6(prefix, 0))],
        Expect::Block,
        "Scanner using a new random source address from one /64 for every request, ~5 req/s for 3 minutes from minute 2, Go-http-client/1.1, word-list paths, mostly 404.",
    );
    let mut t = w.at(2.0);
    let stop = t + 3 * MIN;
    let words = dir_words();
    let mut i = 0usize;
    while t < stop {
        let ip = IpAddr::V6(v6(prefix, em.rng.next_u64()));
        let mut c = Client::new(ip, "Go-http-client/1.1", 1);
        c.recv = 110;
        let p = if i % 4 == 3 {
            EXPLOITS[(i / 4) % EXPLOITS.len()].to_string()
        } else {
            format!("/{}", words[(i * 13 + 5) % words.len()])
        };
        em.send(&mut c, t, "GET", &p, Intent::Auto);
        i += 1;
        t += tool_gap(&mut em.rng, 5.0);
    }
    w.done(em);
}

/// `subnet-scanner`: a distributed scan from 24 addresses of one /24 (a
/// rented VPS range / small botnet), each sending one request every
/// 15–30 s, all pulling paths from one shared work queue. No single address
/// looks busy; the /24 makes ~1 req/s. Minute 24–40 (spans the outage).
fn subnet_scanner(w: &mut World<'_>) {
    let net: IpNet = "203.0.113.0/24".parse().expect("valid net");
    let mut em = w.add(
        "subnet-scanner".into(),
        "subnet-scanner",
        vec![net],
        Expect::Block,
        "Distributed scan: 24 addresses of 203.0.113.0/24, each one request every 15-30 s from a shared work queue (exploit and directory paths), minute 24-40, Chrome 120 UA. Mostly 404; only the /24 looks busy.",
    );
    let mut hosts: Vec<u8> = Vec::new();
    while hosts.len() < 24 {
        let h = 2 + em.rng.below(250) as u8;
        if !hosts.contains(&h) {
            hosts.push(h);
        }
    }
    let start = w.at(24.0);
    let stop = w.at(40.0);
    let mut sched: Vec<(i64, usize)> = Vec::new();
    for (k, _) in hosts.iter().enumerate() {
        let mut t = start + em.rng.range(0, 30 * SEC);
        while t < stop {
            sched.push((t, k));
            t += em.rng.range(15 * SEC, 30 * SEC);
        }
    }
    sched.sort();
    let mut clients: Vec<Client> = hosts
        .iter()
        .map(|&h| Client::new(v4(203, 0, 113, h), "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36", 1))
        .collect();
    let words = dir_words();
    for (i, (t, k)) in sched.into_iter().enumerate() {
        let p = if i % 3 == 0 {
            EXPLOITS[(i / 3) % EXPLOITS.len()].to_string()
        } else {
            format!("/{}", words[(i * 11 + 3) % words.len()])
        };
        clients[k].reset();
        em.send(&mut clients[k], t, "GET", &p, Intent::Auto);
    }
    w.done(em);
}

/// `scanner-extra` ×N ([`Scenario::extra_scanners`]): directory scanners
/// of every common make, each from its own address, 5–40 req/s, a word
/// list of ~500–1,500 entries with 1–3 extensions, at a random time.
fn extra_scanners(w: &mut World<'_>) {
    const TOOLS: [(&str, &str); 5] = [
        ("gobuster", "gobuster/3.6"),
        ("dirb", "Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1)"),
        ("ffuf", "Fuzz Faster U Fool v2.1.0-dev"),
        ("feroxbuster", "feroxbuster/2.10.4"),
        (
            "dirsearch",
            "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0",
        ),
    ];
    const EXTS: [&str; 6] = ["", ".php", ".bak", ".zip", ".txt", ".old"];
    let words = dir_words();
    for i in 0..w.s.extra_scanners {
        let ip = v4(198, 18, (i / 250) as u8, 1 + (i % 250) as u8);
        let (tool, ua) = TOOLS[i % TOOLS.len()];
        let mut em = w.add(
            format!("scanner-extra-{i:02}-{tool}"),
            "scanner-extra",
            vec![net32(ip)],
            Expect::Block,
            "Directory scanner (a scanner-heavy site): 5-40 req/s, a word list with 1-3 extensions, at a random time.",
        );
        let rate = em.rng.uniform(5.0, 40.0);
        let mut c = Client::new(ip, ua, 10);
        c.recv = 130;
        let mut t = w.at(em.rng.uniform(0.0, 55.0));
        let n_ext = 1 + em.rng.below(3) as usize;
        let skip = em.rng.below(words.len() as u64 / 2) as usize;
        for wd in words.iter().skip(skip) {
            for e in &EXTS[..n_ext] {
                t += tool_gap(&mut em.rng, rate);
                em.send(&mut c, t, "GET", &format!("/{wd}{e}"), Intent::Auto);
            }
        }
        w.done(em);
    }
}

/// `cgnat`: a mobile carrier's CGNAT /24 ([`Scenario::cgnat_users`]):
/// that many shoppers share 20–60 public addresses of one /24, each
/// browsing like `user` (with all the site's genuine 404s), and one in
/// four first lands on a stale link from a search result (404) and
/// leaves a third of the time.
fn cgnat(w: &mut World<'_>) {
    if w.s.cgnat_users == 0 {
        return;
    }
    let net: IpNet = "100.70.12.0/24".parse().expect("valid net");
    let desc = format!(
        "A mobile carrier's CGNAT /24: {} shoppers behind a few dozen of its addresses, browsing like `user`; a quarter arrive on a stale link (404).",
        w.s.cgnat_users
    );
    let mut em = w.add("cgnat".into(), "cgnat", vec![net], Expect::Allow, &desc);
    let pool = 20 + em.rng.below(41) as u8;
    for _ in 0..w.s.cgnat_users {
        let ip = v4(100, 70, 12, 1 + em.rng.below(u64::from(pool)) as u8);
        let mut sh = Shopper::new(&mut em.rng, ip);
        sh.c.ports = (1024, 65_535);
        if em.rng.chance(0.25) {
            let span = em.end_us - em.start_us;
            let t = em.start_us + em.rng.below(span as u64) as i64;
            let dead = format!("/products/{}", em.rng.pick(&em.site.dead_products));
            em.send(&mut sh.c, t, "GET", &dead, Intent::Auto);
            if em.rng.chance(0.33) {
                continue;
            }
        }
        browse_hour(&mut em, &mut sh);
    }
    w.done(em);
}

/// `thin-scan` ([`Scenario::thin_scan`]): exploit and directory probes
/// spread over 10–50 addresses of one /24 at 10–60 requests a minute for
/// the whole network, every request a different path, each address far
/// below any per-address threshold.
fn thin_scan(w: &mut World<'_>) {
    let Some(ts) = w.s.thin_scan.clone() else {
        return;
    };
    let net: IpNet = "45.155.205.0/24".parse().expect("valid net");
    let desc = format!(
        "Thin distributed scan from {} addresses of {net}: {:.0} requests a minute for the network over {:.0} minutes, every request a different exploit or directory path.",
        ts.members, ts.per_minute, ts.minutes
    );
    let mut em = w.add(
        "thin-scan".into(),
        "thin-scan",
        vec![net],
        Expect::Block,
        &desc,
    );
    let mut hosts: Vec<u8> = Vec::new();
    while hosts.len() < ts.members.min(250) {
        let h = 2 + em.rng.below(250) as u8;
        if !hosts.contains(&h) {
            hosts.push(h);
        }
    }
    let mut clients: Vec<Client> = hosts
        .iter()
        .map(|&h| Client::new(v4(45, 155, 205, h), "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36", 1))
        .collect();
    let mut paths: Vec<String> = EXPLOITS.iter().map(|p| p.to_string()).collect();
    for wd in dir_words() {
        for e in [".php", ".bak", ".env", ".sql"] {
            paths.push(format!("/{wd}{e}"));
        }
    }
    let start = w.at(ts.start_minute);
    let end = start + (ts.minutes * MIN as f64) as i64;
    let mut t = start;
    let mut i = 0;
    while t < end && i < paths.len() {
        let k = em.rng.below(clients.len() as u64) as usize;
        clients[k].reset();
        let p = paths[(i * 7919) % paths.len()].clone();
        em.send(&mut clients[k], t, "GET", &p, Intent::Auto);
        i += 1;
        t += tool_gap(&mut em.rng, ts.per_minute / 60.0);
    }
    w.done(em);
}
