//! The simulated web shop behind the ALB: its pages, assets, routes, the
//! listener rules, the WAF web ACL and the backend outage. Actors only
//! choose *what* to request; the site decides every status, so status
//! mixes emerge from behaviour instead of being dialled in per actor.

use std::collections::{HashMap, HashSet};

use super::rng::{fnv1a, Rng};
use super::OutageScope;

/// Host name of the simulated shop.
pub(crate) const HOST: &str = "shop.example.com";

/// Target group of the application servers (pages, API, login).
pub(crate) const TG_APP: &str =
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/shop-app/3f1e8c2d9b7a6e54";
/// Target group of the static file servers (`/static/*`), which keep
/// serving during the application outage.
pub(crate) const TG_STATIC: &str =
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/shop-static/8a9b0c1d2e3f4a5b";
pub(crate) const APP_TARGETS: [&str; 3] = ["10.0.1.10:8080", "10.0.2.11:8080", "10.0.3.12:8080"];
pub(crate) const STATIC_TARGETS: [&str; 2] = ["10.0.1.20:80", "10.0.2.21:80"];

/// Which target group served a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tg {
    App,
    Static,
}

/// How the ALB handled a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Disp {
    /// Forwarded; the target answered.
    Forward { tg: Tg, target: u8 },
    /// Forwarded, but the target failed (502 reset / 504 connect timeout):
    /// target logged, target status `-`.
    TargetFailed { target: u8 },
    /// ALB answered itself, no target (503: no healthy target).
    NoTarget,
    /// Blocked by the WAF web ACL (403, actions `waf`).
    Waf,
    /// Listener-rule redirect (actions `redirect`).
    Redirect(String),
    /// Listener-rule fixed response (actions `fixed-response`).
    Fixed,
    /// Unparseable request line: ALB answers 400 itself.
    Malformed,
}

/// What an actor wants the application to answer, where only the actor
/// knows (a right or wrong password, an expired token, a payload that
/// breaks the SQL).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Intent {
    /// Let the site decide from the path.
    Auto,
    /// The application answers this status (if the request reaches it).
    Status(u16),
    /// Like `Status`, but the application takes this many ms (time-based
    /// SQL injection, bcrypt).
    Slow(u16, i32),
    /// A browser revalidating a cached asset on reload (304 if it exists).
    Revalidate,
}

/// The result of one request.
#[derive(Clone, Debug)]
pub(crate) struct Outcome {
    pub elb: u16,
    pub target_status: Option<u16>,
    pub disp: Disp,
    pub sent: u32,
    /// request / target / response processing time in ms; -1 = `-1`.
    pub times: [i32; 3],
}

pub(crate) struct Page {
    pub path: String,
    /// Asset paths the page references (shared css/js first).
    pub assets: Vec<String>,
    /// XHR calls the page makes after load.
    pub api: Vec<String>,
    pub size: u32,
}

pub(crate) struct Site {
    pub pages: Vec<Page>,
    pub page_set: HashSet<String>,
    pub assets: HashMap<String, u32>,
    pub products: Vec<&'static str>,
    pub categories: Vec<&'static str>,
    pub dead_products: Vec<String>,
    /// Absolute outage window in µs, if any.
    pub outage: Option<(i64, i64)>,
    /// What the outage takes down.
    pub scope: OutageScope,
    /// Application paths with this prefix fail at this rate (500/502).
    pub flaky: Option<(String, f64)>,
}

pub(crate) const PRODUCTS: [&str; 30] = [
    "linen-shirt",
    "denim-jacket",
    "wool-beanie",
    "leather-belt",
    "canvas-tote",
    "running-shoes",
    "rain-coat",
    "cotton-socks",
    "silk-scarf",
    "hiking-boots",
    "travel-mug",
    "ceramic-bowl",
    "desk-lamp",
    "oak-shelf",
    "throw-blanket",
    "yoga-mat",
    "water-bottle",
    "sun-hat",
    "card-wallet",
    "backpack-20l",
    "bike-light",
    "phone-case",
    "wireless-earbuds",
    "notebook-a5",
    "fountain-pen",
    "scented-candle",
    "tea-sampler",
    "coffee-grinder",
    "chef-knife",
    "cutting-board",
];
pub(crate) const CATEGORIES: [&str; 10] = [
    "men",
    "women",
    "kids",
    "shoes",
    "accessories",
    "home",
    "kitchen",
    "outdoor",
    "gifts",
    "sale",
];
const INFO: [&str; 9] = [
    "about", "contact", "faq", "shipping", "returns", "privacy", "terms", "stores", "careers",
];
const BLOG: [&str; 8] = [
    "spring-lookbook",
    "care-for-linen",
    "packing-light",
    "gift-guide-2025",
    "behind-the-seams",
    "sustainable-sourcing",
    "coffee-at-home",
    "trail-essentials",
];
/// Search terms real shoppers type.
pub(crate) const SEARCH_TERMS: [&str; 24] = [
    "shirt",
    "linen",
    "blue+jacket",
    "boots",
    "gift",
    "mug",
    "socks",
    "sale",
    "backpack",
    "lamp",
    "candle",
    "scarf",
    "earbuds",
    "rain",
    "kids+shoes",
    "knife",
    "tea",
    "hat",
    "wallet",
    "yoga",
    "bottle",
    "pen",
    "blanket",
    "summer",
];
const SHARED_ASSETS: [(&str, u32); 5] = [
    ("/static/css/main.4f9a1c.css", 48_213),
    ("/static/js/vendor.b81e07.js", 312_554),
    ("/static/js/app.2c7d93.js", 88_410),
    ("/static/img/logo.svg", 6_120),
    ("/static/fonts/inter-var.woff2", 97_830),
];
/// The banner the home page still links although the file was removed.
pub(crate) const BROKEN_BANNER: &str = "/static/img/banner-winter-sale.jpg";

fn size_of(path: &str, lo: u32, hi: u32) -> u32 {
    lo + (fnv1a(path) % u64::from(hi - lo)) as u32
}

impl Site {
    pub(crate) fn new(
        outage: Option<(i64, i64)>,
        scope: OutageScope,
        flaky: Option<(String, f64)>,
    ) -> Site {
        let mut assets: HashMap<String, u32> = HashMap::new();
        for (p, s) in SHARED_ASSETS {
            assets.insert(p.to_string(), s);
        }
        let mut pages = Vec::new();
        let mut add = |path: String,
                       imgs: Vec<String>,
                       api: Vec<String>,
                       assets: &mut HashMap<String, u32>| {
            let mut list: Vec<String> = SHARED_ASSETS.iter().map(|(p, _)| p.to_string()).collect();
            for i in imgs {
                if i != BROKEN_BANNER {
                    let s = size_of(&i, 8_000, 180_000);
                    assets.insert(i.clone(), s);
                }
                list.push(i);
            }
            let size = size_of(&path, 14_000, 62_000);
            pages.push(Page {
                path,
                assets: list,
                api,
                size,
            });
        };
        // Home: hero images, category tiles and the broken banner.
        let mut home: Vec<String> = vec![BROKEN_BANNER.to_string()];
        for c in CATEGORIES.iter().take(6) {
            home.push(format!("/static/img/tiles/{c}.webp"));
        }
        add("/".into(), home, vec!["/api/v1/cart".into()], &mut assets);
        for c in CATEGORIES {
            let imgs = (0..8)
                .map(|i| {
                    format!(
                        "/static/img/p/{}-thumb.webp",
                        PRODUCTS[(fnv1a(c) as usize + i * 7) % 30]
                    )
                })
                .collect();
            add(
                format!("/category/{c}"),
                imgs,
                vec!["/api/v1/cart".into()],
                &mut assets,
            );
        }
        for (i, p) in PRODUCTS.iter().enumerate() {
            let n = 2 + (fnv1a(p) % 5) as usize;
            let imgs = (1..=n)
                .map(|k| format!("/static/img/p/{p}-{k}.jpg"))
                .collect();
            add(
                format!("/products/{p}"),
                imgs,
                vec![
                    format!("/api/v1/products/{}/reviews", 1001 + i),
                    "/api/v1/cart".into(),
                ],
                &mut assets,
            );
        }
        for b in INFO {
            add(format!("/{b}"), vec![], vec![], &mut assets);
        }
        add(
            "/blog".into(),
            BLOG.iter()
                .map(|b| format!("/static/img/blog/{b}-thumb.jpg"))
                .collect(),
            vec![],
            &mut assets,
        );
        for b in BLOG {
            add(
                format!("/blog/{b}"),
                vec![
                    format!("/static/img/blog/{b}.jpg"),
                    format!("/static/img/blog/{b}-2.jpg"),
                ],
                vec![],
                &mut assets,
            );
        }
        add(
            "/cart".into(),
            vec![],
            vec!["/api/v1/cart".into()],
            &mut assets,
        );
        // 1 + 10 + 30 + 9 + 1 + 8 + 1 = 60 pages.
        let page_set = pages.iter().map(|p| p.path.clone()).collect();
        let mut dead = Vec::new();
        const OLD: [&str; 24] = [
            "flannel-shirt",
            "cargo-pants",
            "knit-sweater",
            "parka",
            "loafers",
            "sandals",
            "beach-towel",
            "espresso-cups",
            "wall-clock",
            "floor-rug",
            "gym-bag",
            "umbrella",
            "tie",
            "cufflinks",
            "rain-boots",
            "puzzle",
            "plant-pot",
            "kettle",
            "apron",
            "lunch-box",
            "camp-stove",
            "sleeping-bag",
            "trekking-poles",
            "headlamp",
        ];
        const COLORS: [&str; 8] = [
            "", "-black", "-navy", "-olive", "-red", "-grey", "-2023", "-limited",
        ];
        for o in OLD {
            for c in COLORS {
                dead.push(format!("{o}{c}"));
            }
        }
        Site {
            pages,
            page_set,
            assets,
            products: PRODUCTS.to_vec(),
            categories: CATEGORIES.to_vec(),
            dead_products: dead,
            outage,
            scope,
            flaky,
        }
    }

    pub(crate) fn in_outage(&self, t_us: i64) -> bool {
        matches!(self.outage, Some((a, b)) if t_us >= a && t_us < b)
    }

    /// Is `path` of the application down at `t_us`?
    pub(crate) fn app_down(&self, t_us: i64, path: &str) -> bool {
        self.in_outage(t_us)
            && match &self.scope {
                OutageScope::App | OutageScope::Site => true,
                OutageScope::Prefix(p) => path.starts_with(p.as_str()),
            }
    }

    /// The application's own answer (no outage, no WAF).
    fn app_status(&self, method: &str, path: &str) -> u16 {
        let (p, q) = match path.split_once('?') {
            Some((p, q)) => (p, q),
            None => (path, ""),
        };
        let read = matches!(method, "GET" | "HEAD");
        if method == "OPTIONS" {
            return 204;
        }
        if !read && !matches!(method, "POST") {
            return 405;
        }
        if self.page_set.contains(p) || p == "/search" {
            return if read { 200 } else { 405 };
        }
        if let Some(rest) = p.strip_prefix("/api/v1/") {
            return match rest {
                "cart" | "products" | "search" => 200,
                "notifications" | "user/preferences" => 401,
                "auth/token" => 403,
                _ if rest.starts_with("products/") && rest.ends_with("/reviews") => 200,
                _ => 404,
            };
        }
        match p {
            "/login" => {
                if read {
                    200
                } else {
                    401
                }
            }
            "/products" => {
                let id = q.strip_prefix("id=").unwrap_or("");
                match id.parse::<u32>() {
                    Ok(n) if (1001..=1030).contains(&n) => 200,
                    Ok(_) => 404,
                    Err(_) => 400,
                }
            }
            "/health" | "/robots.txt" | "/sitemap.xml" | "/password-reset" => 200,
            "/account" | "/logout" | "/admin/" | "/checkout" => 302,
            "/admin" | "/api" | "/images" | "/blog/" | "/search/" => 301,
            "/server-status" | "/.htaccess" | "/.htpasswd" | "/.ht" => 403,
            _ => 404,
        }
    }

    /// AWS managed rule groups on the web ACL: the SQLi rule set blocks
    /// blatant `UNION ... SELECT`, the known-bad-inputs set blocks
    /// `PROPFIND` and log4j `${jndi:` probes. Everything else passes.
    fn waf_blocks(method: &str, path: &str) -> bool {
        if method == "PROPFIND" {
            return true;
        }
        let l = path
            .to_ascii_lowercase()
            .replace("%20", " ")
            .replace('+', " ");
        (l.contains("union all select") || l.contains("union select"))
            || l.contains("${jndi:")
            || l.contains("%24%7bjndi")
    }

    /// Decide the outcome of a request arriving at `t_us`.
    pub(crate) fn serve(
        &self,
        rng: &mut Rng,
        t_us: i64,
        method: &str,
        path: &str,
        intent: Intent,
    ) -> Outcome {
        if Self::waf_blocks(method, path) {
            return Outcome {
                elb: 403,
                target_status: None,
                disp: Disp::Waf,
                sent: 229,
                times: [0, -1, -1],
            };
        }
        if path == "/ping" {
            return Outcome {
                elb: 200,
                target_status: None,
                disp: Disp::Fixed,
                sent: 162,
                times: [-1, -1, -1],
            };
        }
        if let Some(rest) = path.strip_prefix("/shop/") {
            let to = format!("http://{HOST}:80/products/{rest}");
            return Outcome {
                elb: 301,
                target_status: None,
                disp: Disp::Redirect(to),
                sent: 366,
                times: [-1, -1, -1],
            };
        }
        if path.starts_with("/static/") && self.scope == OutageScope::Site && self.in_outage(t_us) {
            return Outcome {
                elb: 503,
                target_status: None,
                disp: Disp::NoTarget,
                sent: 276,
                times: [0, -1, -1],
            };
        }
        if let Some(_rest) = path.strip_prefix("/static/") {
            let target = rng.below(STATIC_TARGETS.len() as u64) as u8;
            let read = matches!(method, "GET" | "HEAD");
            let p = path.split('?').next().unwrap_or(path);
            let (status, sent) = match (read, self.assets.get(p), intent) {
                (false, _, _) => (405, 173),
                (true, Some(_), Intent::Revalidate) => (304, 281),
                (true, Some(&s), _) => (200, if method == "HEAD" { 312 } else { s + 312 }),
                (true, None, _) if p == "/static/" => (403, 299),
                (true, None, _) => (404, 299),
            };
            let t = rng.range(0, 3) as i32;
            return Outcome {
                elb: status,
                target_status: Some(status),
                disp: Disp::Forward {
                    tg: Tg::Static,
                    target,
                },
                sent,
                times: [0, t, 0],
            };
        }
        // The application target group.
        let target = rng.below(APP_TARGETS.len() as u64) as u8;
        if let Some((prefix, rate)) = &self.flaky {
            if path.starts_with(prefix.as_str()) && rng.chance(*rate) {
                let elb = if rng.chance(0.6) { 500 } else { 502 };
                return Outcome {
                    elb,
                    target_status: (elb == 500).then_some(500),
                    disp: if elb == 500 {
                        Disp::Forward {
                            tg: Tg::App,
                            target,
                        }
                    } else {
                        Disp::TargetFailed { target }
                    },
                    sent: 290,
                    times: [
                        0,
                        if elb == 500 { 35 } else { -1 },
                        if elb == 500 { 0 } else { -1 },
                    ],
                };
            }
        }
        if self.app_down(t_us, path) {
            let k = rng.weighted(&[50, 30, 20]);
            return match k {
                0 => Outcome {
                    elb: 502,
                    target_status: None,
                    disp: Disp::TargetFailed { target },
                    sent: 272,
                    times: [0, -1, -1],
                },
                1 => Outcome {
                    elb: 503,
                    target_status: None,
                    disp: Disp::NoTarget,
                    sent: 276,
                    times: [0, -1, -1],
                },
                // The instance is gone: the TCP connect to it times out after 10 s.
                _ => Outcome {
                    elb: 504,
                    target_status: None,
                    disp: Disp::TargetFailed { target },
                    sent: 278,
                    times: [0, 10_000, -1],
                },
            };
        }
        let (mut status, mut ms) = match intent {
            Intent::Status(s) => (s, -1),
            Intent::Slow(s, ms) => (s, ms),
            _ => (self.app_status(method, path), -1),
        };
        if status < 500 && rng.chance(0.001) {
            status = 500;
        }
        let p = path.split('?').next().unwrap_or(path);
        let page = self.pages.iter().find(|pg| pg.path == p);
        if ms < 0 {
            ms = match status {
                200 if p.starts_with("/api/") => 5 + rng.exp(25.0) as i32,
                200 if p == "/health" => 1 + rng.below(3) as i32,
                200 => 25 + rng.exp(90.0) as i32,
                401 | 302 if method == "POST" => 180 + rng.below(160) as i32,
                500 => 40 + rng.exp(400.0) as i32,
                _ => 3 + rng.below(12) as i32,
            };
        }
        let sent = match status {
            200 if method == "HEAD" => 320,
            200 if p.starts_with("/api/") => 420 + (fnv1a(path) % 4000) as u32,
            200 => page.map_or(9_000 + (fnv1a(path) % 30_000) as u32, |pg| {
                pg.size + rng.below(400) as u32
            }),
            204 => 230,
            301 | 302 => 380,
            401 | 403 if p.starts_with("/api/") => 310,
            404 => 1_842,
            400 => 1_201,
            500 => 1_511,
            _ => 1_320,
        };
        Outcome {
            elb: status,
            target_status: Some(status),
            disp: Disp::Forward {
                tg: Tg::App,
                target,
            },
            sent,
            times: [0, ms, 0],
        }
    }
}

// ---------------------------------------------------------------- user agents

/// Browser family: decides favicon and caching behaviour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fam {
    /// Chrome, Edge, Samsung Internet: favicon once per session.
    Chromium,
    /// Firefox: asks for /favicon.ico again on every page view while it 404s.
    Firefox,
    /// Safari (iOS/macOS): favicon once, plus apple-touch-icon probes.
    Safari,
}

/// Browser user agents of late 2025 with a rough market-share weight.
pub(crate) const BROWSERS: [(&str, Fam, u32); 10] = [
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", Fam::Chromium, 26),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", Fam::Chromium, 9),
    ("Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36", Fam::Chromium, 20),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 18_1_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1.1 Mobile/15E148 Safari/604.1", Fam::Safari, 18),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15", Fam::Safari, 6),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0", Fam::Chromium, 8),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0", Fam::Firefox, 5),
    ("Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0", Fam::Firefox, 2),
    ("Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36", Fam::Chromium, 4),
    ("Mozilla/5.0 (iPad; CPU OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1", Fam::Safari, 2),
];

pub(crate) fn pick_browser(rng: &mut Rng) -> (&'static str, Fam) {
    let w: Vec<u32> = BROWSERS.iter().map(|b| b.2).collect();
    let b = &BROWSERS[rng.weighted(&w)];
    (b.0, b.1)
}

// ------------------------------------------------------------------ word lists

/// Entries in the style of dirb/SecLists `common.txt` (alphabetical, as the
/// tools walk them). Real lists have ~4,600 entries; the tools below expand
/// these with extensions (`-x php,bak,txt`), as operators usually do.
pub(crate) const COMMON: &[&str] = &[
    ".bash_history",
    ".bashrc",
    ".cvs",
    ".env",
    ".git/HEAD",
    ".git/config",
    ".gitignore",
    ".hta",
    ".htaccess",
    ".htpasswd",
    ".listing",
    ".mysql_history",
    ".profile",
    ".ssh",
    ".svn/entries",
    ".well-known/security.txt",
    "_admin",
    "_backup",
    "_config",
    "_vti_bin",
    "_vti_pvt",
    "about",
    "access",
    "access_log",
    "account",
    "accounts",
    "admin",
    "admin.php",
    "admin1",
    "admin2",
    "admin_area",
    "adminer.php",
    "administrator",
    "adminpanel",
    "ajax",
    "api",
    "app",
    "apps",
    "archive",
    "archives",
    "assets",
    "auth",
    "awstats",
    "backend",
    "backup",
    "backup.sql",
    "backup.zip",
    "backups",
    "bak",
    "banner",
    "bin",
    "blog",
    "cache",
    "cart",
    "cgi",
    "cgi-bin/",
    "changelog",
    "checkout",
    "cms",
    "composer.json",
    "composer.lock",
    "conf",
    "config",
    "config.php",
    "config.yml",
    "console",
    "contact",
    "content",
    "cp",
    "cpanel",
    "cron",
    "css",
    "customer",
    "dashboard",
    "data",
    "database",
    "db",
    "db.sql",
    "debug",
    "default",
    "demo",
    "deploy",
    "dev",
    "development",
    "dir",
    "docker-compose.yml",
    "docs",
    "download",
    "downloads",
    "dump",
    "dump.sql",
    "editor",
    "elmah.axd",
    "email",
    "env",
    "error",
    "error_log",
    "errors",
    "export",
    "faq",
    "feed",
    "file",
    "files",
    "forum",
    "ftp",
    "graphql",
    "guest",
    "health",
    "help",
    "home",
    "html",
    "images",
    "img",
    "import",
    "inc",
    "include",
    "includes",
    "index",
    "index.php",
    "info",
    "info.php",
    "install",
    "installer",
    "internal",
    "js",
    "json",
    "jenkins",
    "lib",
    "libs",
    "license",
    "log",
    "login",
    "logs",
    "mail",
    "manage",
    "manager",
    "media",
    "member",
    "members",
    "metrics",
    "misc",
    "mysql",
    "new",
    "news",
    "node_modules",
    "old",
    "panel",
    "passwd",
    "password",
    "php",
    "phpinfo.php",
    "phpmyadmin",
    "phpMyAdmin",
    "pma",
    "portal",
    "private",
    "prod",
    "public",
    "readme",
    "README.md",
    "register",
    "release",
    "reports",
    "resources",
    "restore",
    "robots.txt",
    "root",
    "rss",
    "sample",
    "scripts",
    "search",
    "secret",
    "secure",
    "server",
    "server-status",
    "service",
    "services",
    "settings",
    "setup",
    "shell",
    "site",
    "sitemap.xml",
    "sql",
    "src",
    "staging",
    "stats",
    "status",
    "storage",
    "swagger",
    "swagger.json",
    "system",
    "temp",
    "test",
    "test.php",
    "testing",
    "tmp",
    "tools",
    "upload",
    "uploads",
    "user",
    "users",
    "v1",
    "v2",
    "vendor",
    "web",
    "web.config",
    "webadmin",
    "webmail",
    "wp",
    "wp-admin",
    "wp-content",
    "wp-login.php",
    "www",
    "xmlrpc.php",
    "zip",
];

/// Paths opportunistic exploit bots probe (Mirai-style IoT, PHPUnit RCE,
/// leaked dotfiles, Spring actuators, admin consoles), as seen in any
/// internet-facing log.
pub(crate) const EXPLOITS: &[&str] = &[
    "/.env", "/.env.bak", "/.env.production", "/.git/config", "/.aws/credentials",
    "/wp-login.php", "/xmlrpc.php", "/wp-includes/wlwmanifest.xml", "/phpinfo.php",
    "/vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php", "/cgi-bin/luci/;stok=/locale",
    "/boaform/admin/formLogin", "/actuator/env", "/actuator/health", "/api/jsonws/invoke",
    "/solr/admin/info/system", "/owa/auth/logon.aspx", "/remote/fgt_lang?lang=/../../../..//////////dev/cmdb/sslvpn_websession",
    "/console/", "/manager/html", "/HNAP1/", "/GponForm/diag_Form?images/", "/shell?cd+/tmp",
    "/index.php?s=/Index/\\think\\app/invokefunction&function=call_user_func_array&vars[0]=md5&vars[1][]=HelloThinkPHP",
    "/config.json", "/server-status", "/debug/default/view?panel=config", "/.DS_Store",
    "/backup.sql", "/db.sql", "/admin/config.php", "/phpmyadmin/", "/pma/", "/mysql/",
    "/sites/default/files/", "/user/register", "/autodiscover/autodiscover.xml",
    "/telescope/requests", "/_ignition/execute-solution", "/.vscode/sftp.json", "/info.php",
    "/containers/json", "/v2/_catalog", "/geoserver/web/", "/ReportServer", "/nmaplowercheck1",
];

/// WordPress plugin slugs wpscan's aggressive plugin detection walks.
pub(crate) const WP_PLUGINS: &[&str] = &[
    "akismet",
    "contact-form-7",
    "woocommerce",
    "elementor",
    "wordpress-seo",
    "jetpack",
    "wordfence",
    "classic-editor",
    "really-simple-ssl",
    "updraftplus",
    "wpforms-lite",
    "all-in-one-seo-pack",
    "litespeed-cache",
    "wp-mail-smtp",
    "duplicate-post",
    "google-site-kit",
    "redirection",
    "mailchimp-for-wp",
    "tinymce-advanced",
    "wp-super-cache",
    "w3-total-cache",
    "advanced-custom-fields",
    "limit-login-attempts-reloaded",
    "regenerate-thumbnails",
    "wp-optimize",
    "all-in-one-wp-migration",
    "duplicator",
    "loginizer",
    "autoptimize",
    "health-check",
    "cookie-law-info",
    "complianz-gdpr",
    "ninja-forms",
    "formidable",
    "revslider",
    "js_composer",
    "LayerSlider",
    "wp-file-manager",
    "file-manager-advanced",
    "backup-backup",
    "essential-addons-for-elementor-lite",
    "header-footer-elementor",
    "ultimate-addons-for-gutenberg",
    "wpdiscuz",
    "wp-fastest-cache",
    "breeze",
    "smush",
    "wp-smushit",
    "imagify",
    "ewww-image-optimizer",
    "shortpixel-image-optimiser",
    "better-wp-security",
    "sucuri-scanner",
    "all-in-one-wp-security-and-firewall",
    "google-analytics-for-wordpress",
    "google-analytics-dashboard-for-wp",
    "wp-statistics",
    "polylang",
    "sitepress-multilingual-cms",
    "translatepress-multilingual",
    "bbpress",
    "buddypress",
    "learnpress",
    "the-events-calendar",
    "easy-digital-downloads",
    "give",
    "woocommerce-payments",
    "woocommerce-gateway-stripe",
    "woocommerce-services",
    "mailpoet",
    "newsletter",
    "popup-maker",
    "optinmonster",
    "social-warfare",
    "shared-counts",
    "wp-google-maps",
    "simple-custom-post-order",
    "custom-post-type-ui",
    "pods",
    "meta-box",
    "cmb2",
    "kirki",
    "one-click-demo-import",
    "starter-templates",
    "astra-sites",
    "gutenberg",
    "coblocks",
    "kadence-blocks",
    "spectra",
    "otter-blocks",
    "stackable-ultimate-gutenberg-blocks",
    "insert-headers-and-footers",
    "code-snippets",
    "wp-rocket",
    "w3-total-cache",
    "query-monitor",
    "user-role-editor",
    "members",
    "profile-builder",
    "ultimate-member",
    "wp-user-avatar",
    "theme-my-login",
    "nextend-facebook-connect",
    "wordpress-social-login",
    "super-socializer",
];
