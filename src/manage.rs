//! Manual control and inspection of a state: `explain`, `block`,
//! `unblock`, `status`, `sync`. The state is a local directory (as written
//! by `detect --state DIR`) or the deployed functions' `s3://` state.

use crate::output::rfc3339;
use crate::InputError;
use anyhow::Result;
use fail2waf_core::aws::notify::Action;
use fail2waf_core::aws::patterns::pack;
use fail2waf_core::aws::service::Service;
use fail2waf_core::client::{widen, ClientResolver};
use fail2waf_core::clock::wall_ms;
use fail2waf_core::config::Config;
use fail2waf_core::duration::Secs;
use fail2waf_core::engine::{Engine, StoredState};
use fail2waf_core::key::{Key, User};
use fail2waf_core::ledger::{Block, Ledger, Manual, Policy};
use fail2waf_core::printable::clip;
use fail2waf_core::rules::KeyKind;
use fail2waf_core::state::DirState;
use fail2waf_core::window::window_start;
use ipnet::IpNet;
use serde_json::json;
use std::path::PathBuf;
use std::process::ExitCode;

/// Where a command finds the state.
#[derive(Debug, clap::Args)]
pub struct StateArgs {
    /// The state: a directory (`detect --state DIR`) or `s3://bucket/prefix/`
    /// (the deployed functions'; FAIL2WAF_IPSET_V4_ARN and _V6_ARN in the
    /// environment let `block`, `unblock` and `sync` update WAF).
    #[arg(long)]
    state: String,
    /// Rules and settings (TOML), as the state was counted with.
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// The time to act at (RFC 3339); default now. A backtest's ledger is in
    /// the event time of its logs.
    #[arg(long)]
    now: Option<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// An opened state.
enum State {
    Dir(
        DirState,
        StoredState,
        Box<Ledger>,
        fail2waf_core::state::Absorbed,
    ),
    S3(Box<Service>, tokio::runtime::Runtime),
}

struct Ctx {
    state: State,
    config: Config,
    policy: Policy,
    now: i64,
    json: bool,
}

fn open(a: &StateArgs) -> Result<Ctx> {
    let config = match &a.config {
        Some(p) => Config::load(p).map_err(|e| InputError(format!("{}: {e}", p.display())))?,
        None => Config::default(),
    };
    let now = match &a.now {
        Some(t) => chrono::DateTime::parse_from_rfc3339(t)
            .map_err(|e| InputError(format!("--now {t}: {e}")))?
            .timestamp_millis(),
        None => wall_ms(),
    };
    let state = if a.state.starts_with("s3://") {
        let aws = crate::detect::Aws::connect()?;
        let svc = aws.service(&a.state, config.clone())?;
        State::S3(Box::new(svc), aws.rt)
    } else {
        let dir = DirState::new(&a.state);
        if !dir.dir().is_dir() {
            return Err(InputError(format!("{}: no such state directory", a.state)).into());
        }
        let (st, l, abs) = dir.load().map_err(|e| InputError(format!("state: {e}")))?;
        State::Dir(dir, st, Box::new(l), abs)
    };
    Ok(Ctx {
        policy: Policy::new(&config),
        state,
        config,
        now,
        json: a.json,
    })
}

impl Ctx {
    fn ledger(&self) -> Result<Ledger> {
        Ok(match &self.state {
            State::Dir(_, _, l, _) => (**l).clone(),
            State::S3(svc, rt) => {
                rt.block_on(svc.store.ledger())
                    .map_err(|e| anyhow::anyhow!(e))?
                    .value
            }
        })
    }

    /// Change the ledger and save it; returns the ledger as saved.
    fn change(&mut self, mut f: impl FnMut(&mut Ledger) -> bool) -> Result<Ledger> {
        match &mut self.state {
            State::Dir(dir, st, l, abs) => {
                if f(l) {
                    dir.save(st, l, abs)?;
                }
                Ok((**l).clone())
            }
            State::S3(svc, rt) => Ok(rt
                .block_on(svc.update_ledger(f))
                .map_err(|e| anyhow::anyhow!(e))?),
        }
    }

    /// Announce a manual action on the event bus (S3 state with
    /// `FAIL2WAF_EVENT_BUS` set).
    fn announce(&self, action: Action, key: &Key, block: Option<&Block>) {
        if let (State::S3(svc, rt), Some(b)) = (&self.state, block) {
            rt.block_on(svc.announce(action, &[(key.clone(), b.clone())]));
        }
    }

    /// Push the ledger to WAF (S3 state with IP sets), or say what WAF
    /// should hold (the JSON of the desired sets).
    fn sync(&self) -> Result<serde_json::Value> {
        match &self.state {
            State::S3(svc, rt) if !svc.settings.dry_run => {
                let r = rt.block_on(
                    svc.enforce(self.now, &format!("fail2waf-cli-{}", std::process::id())),
                )?;
                Ok(
                    json!({"synced": !r.deferred, "deferred": r.deferred, "v4": r.v4, "v6": r.v6, "writes": r.writes, "overflow": r.overflow,
                          "users": r.users, "users_overflow": r.users_overflow}),
                )
            }
            _ => {
                let d = self.ledger()?.desired(self.now, &self.policy);
                let users = pack(&d.users);
                Ok(
                    json!({"synced": false, "v4": d.v4.iter().map(ToString::to_string).collect::<Vec<_>>(),
                          "v6": d.v6.iter().map(ToString::to_string).collect::<Vec<_>>(),
                          "overflow": d.overflow_v4 + d.overflow_v6,
                          "user_patterns": users.regexes, "users_overflow": users.overflow}),
                )
            }
        }
    }
}

fn who() -> String {
    std::env::var("FAIL2WAF_OPERATOR")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_else(|_| "cli".into())
}

/// `--user VALUE`: act on an application user instead of an address.
#[derive(Debug, clap::Args)]
pub struct UserArg {
    /// An application user (account, API key, session value) instead of
    /// an address.
    #[arg(long)]
    user: Option<String>,
}

impl UserArg {
    /// The key the command acts on: the user, or the positional address,
    /// CIDR or `user:VALUE`.
    pub fn target(&self, positional: Option<String>) -> Result<Key, InputError> {
        match (&self.user, positional) {
            (Some(_), Some(p)) => Err(InputError(format!("`{p}` and `--user`: name one of them"))),
            (Some(u), None) => User::new(u).map(Key::User).ok_or_else(|| {
                InputError(format!(
                    "`{u}` names nobody (empty, `-`, REDACTED, too long or control characters)"
                ))
            }),
            (None, Some(s)) => s
                .parse::<Key>()
                .map(|k| k.trunc())
                .map_err(|_| InputError(format!("`{s}` is not an address, CIDR or `user:VALUE`"))),
            (None, None) => Err(InputError("name an address or `--user`".into())),
        }
    }
}

fn print(ctx: &Ctx, v: &serde_json::Value, text: &str) {
    if ctx.json {
        println!("{v}");
    } else {
        println!("{text}");
    }
}

/// `fail2waf block`.
pub fn block(net: &Key, ttl: Secs, why: &str, a: &StateArgs) -> Result<ExitCode> {
    let mut ctx = open(a)?;
    let (now, policy, by) = (ctx.now, ctx.policy.clone(), who());
    let mut refused = None;
    let ledger =
        ctx.change(
            |l| match l.block_manual(net.clone(), ttl, &by, why, now, &policy) {
                Ok(_) => true,
                Err(r) => {
                    refused = Some(r.to_string());
                    false
                }
            },
        )?;
    if let Some(r) = refused {
        return Err(InputError(format!("{net} cannot be blocked: {r}")).into());
    }
    let b = &ledger.blocks[net];
    ctx.announce(Action::Block, net, Some(b));
    let sync = ctx.sync()?;
    print(
        &ctx,
        &json!({"type": "block", "key": net.to_string(), "ip": net.net().map(|n| n.to_string()), "user": net.user().map(User::as_str), "until": rfc3339(b.until_ms), "by": by, "reason": why, "sync": sync}),
        &format!(
            "blocked {net} until {} ({}); WAF: {sync}",
            rfc3339(b.until_ms),
            b.reason()
        ),
    );
    Ok(ExitCode::SUCCESS)
}

/// `fail2waf unblock`.
pub fn unblock(net: &Key, why: &str, a: &StateArgs) -> Result<ExitCode> {
    let mut ctx = open(a)?;
    let (now, by) = (ctx.now, who());
    let mut removed = None;
    ctx.change(|l| {
        removed = l.unblock(net.clone(), &by, why, now);
        true // the audit entry is recorded either way
    })?;
    // The removed block, with who removed it and why.
    let ended = removed.clone().map(|b| Block {
        manual: Some(Manual {
            by: clip(&by, 100),
            reason: clip(why, 500),
        }),
        ..b
    });
    ctx.announce(Action::Unblock, net, ended.as_ref());
    let sync = ctx.sync()?;
    let was = removed.as_ref().map(|b| b.rule.clone());
    print(
        &ctx,
        &json!({"type": "unblock", "key": net.to_string(), "ip": net.net().map(|n| n.to_string()), "user": net.user().map(User::as_str), "was_blocked_by": was, "by": by, "reason": why, "sync": sync}),
        &match &was {
            Some(rule) => format!(
                "unblocked {net} (was blocked by {rule}); offense history cleared; WAF: {sync}"
            ),
            None => format!("{net} was not blocked (recorded anyway); WAF: {sync}"),
        },
    );
    Ok(ExitCode::SUCCESS)
}

/// `fail2waf status`.
pub fn status(a: &StateArgs) -> Result<ExitCode> {
    let ctx = open(a)?;
    let ledger = ctx.ledger()?;
    let active: Vec<_> = ledger.active(ctx.now).collect();
    let count = |f: fn(&Key) -> bool| active.iter().filter(|(k, _)| f(k)).count();
    let v4 = count(|k| matches!(k, Key::Net(IpNet::V4(_))));
    let v6 = count(|k| matches!(k, Key::Net(IpNet::V6(_))));
    let users = count(|k| matches!(k, Key::User(_)));
    let d = ledger.desired(ctx.now, &ctx.policy);
    let users_overflow = pack(&d.users).overflow;
    let since: Vec<i64> = active.iter().map(|(_, b)| b.since_ms).collect();
    let incident = ledger.incident_until_ms.filter(|t| *t > ctx.now);
    let v = json!({
        "type": "status",
        "now": rfc3339(ctx.now),
        "active_v4": v4, "active_v6": v6, "active_users": users,
        "capacity_v4": ctx.policy.capacity.0, "capacity_v6": ctx.policy.capacity.1,
        "overflow": d.overflow_v4 + d.overflow_v6,
        "users_overflow": users_overflow,
        "oldest": since.iter().min().map(|t| rfc3339(*t)),
        "newest": since.iter().max().map(|t| rfc3339(*t)),
        "incident_until": incident.map(rfc3339),
        "manual_actions": ledger.audit.len(),
        "blocks": active.iter().map(|(n, b)| json!({"key": n.to_string(), "ip": n.net().map(|n| n.to_string()), "user": n.user().map(User::as_str), "rule": b.rule, "since": rfc3339(b.since_ms), "until": rfc3339(b.until_ms), "offense": b.offense, "reason": b.reason()})).collect::<Vec<_>>(),
    });
    let mut text = format!(
        "active blocks: {} IPv4 of {}, {} IPv6 of {}, {} users{}{}\n",
        v4,
        ctx.policy.capacity.0,
        v6,
        ctx.policy.capacity.1,
        users,
        if users_overflow > 0 {
            format!(" ({users_overflow} beyond the regex pattern set's limits)")
        } else {
            String::new()
        },
        if d.overflow_v4 + d.overflow_v6 > 0 {
            format!(
                " ({} over capacity, not enforced)",
                d.overflow_v4 + d.overflow_v6
            )
        } else {
            String::new()
        }
    );
    if let (Some(o), Some(n)) = (since.iter().min(), since.iter().max()) {
        text += &format!(
            "oldest block since {}, newest since {}\n",
            rfc3339(*o),
            rfc3339(*n)
        );
    }
    text += &match incident {
        Some(t) => format!("incident mode until {}\n", rfc3339(t)),
        None => "incident mode: off\n".into(),
    };
    for (n, b) in &active {
        text += &format!(
            "  {:<22} {:<12} until {}  {}\n",
            n.to_string(),
            b.rule,
            rfc3339(b.until_ms),
            b.reason()
        );
    }
    for e in ledger.audit.iter().rev().take(5) {
        text += &format!(
            "  audit: {} {} {} by {}: {}\n",
            rfc3339(e.at_ms),
            e.action,
            e.key,
            e.by,
            e.reason
        );
    }
    print(&ctx, &v, text.trim_end());
    Ok(ExitCode::SUCCESS)
}

/// `fail2waf sync`.
pub fn sync(a: &StateArgs) -> Result<ExitCode> {
    let ctx = open(a)?;
    let v = ctx.sync()?;
    print(&ctx, &v, &v.to_string());
    Ok(ExitCode::SUCCESS)
}

/// `fail2waf explain`.
pub fn explain(target: &Key, a: &StateArgs) -> Result<ExitCode> {
    let ctx = open(a)?;
    // An address counts as its key (an IPv6 address as its /64).
    let key = match target {
        Key::Net(n) if n.prefix_len() == n.max_prefix_len() => {
            Key::Net(ClientResolver::new(vec![], ctx.config.file.ipv6_key_prefix).key(n.addr()))
        }
        other => other.clone(),
    };
    let addr = match target {
        Key::Net(n) => fail2waf_core::client::short(*n),
        user => user.to_string(),
    };
    let windows = match &ctx.state {
        State::Dir(_, st, _, _) => st.clone(),
        State::S3(svc, rt) => rt
            .block_on(svc.windows_of(&key))
            .map_err(|e| anyhow::anyhow!(e))?,
    };
    let mut engine = Engine::new(&ctx.config);
    engine.import(&windows);
    let newest = windows.newest;
    let ledger = ctx.ledger()?;
    let mut rules = Vec::new();
    let mut text = format!("{addr} counts as {key}\n");
    for rule in engine.rules() {
        let c = &rule.config;
        let k = match (c.key, &key) {
            (KeyKind::Ip, Key::Net(_)) | (KeyKind::User, Key::User(_)) => key.clone(),
            (KeyKind::Prefix, Key::Net(n)) => Key::Net(widen(*n, c.prefix_v4, c.prefix_v6)),
            // A user rule says nothing of an address, nor the reverse.
            _ => continue,
        };
        let sk = windows.keys.get(&k);
        let rs = sk.and_then(|s| s.rules.get(&c.name));
        let lo = window_start(newest, rule.window_buckets);
        let now_matched = rs.map_or(0, |r| r.matched.sum(lo, newest));
        let total = sk.map_or(0, |s| s.total.sum(lo, newest));
        let (best, best_end) = rs.map_or((0, newest), |r| {
            r.matched
                .iter()
                .map(|(b, _)| (r.matched.window(b, rule.window_buckets), b))
                .max()
                .unwrap_or((0, newest))
        });
        // Outage awareness may have kept the busiest window from counting.
        let held = engine
            .outage_hold(&k, &c.name, best_end)
            .map(|h| h.to_string());
        let paths = rs.map_or(0, |r| r.paths.count_since(lo));
        let mut needs = vec![format!("{} matched in {}", c.threshold, c.window)];
        if c.distinct_paths > 0 {
            needs.push(format!("{} distinct paths", c.distinct_paths));
        }
        if let Some(r) = c.min_ratio {
            needs.push(format!("{:.0} % of its requests", r * 100.0));
        }
        match c.key {
            KeyKind::Prefix => needs.push(format!("{} quiet addresses of {k}", c.min_members)),
            KeyKind::User if c.min_members > 1 => {
                needs.push(format!("{} addresses", c.min_members))
            }
            _ => {}
        }
        text += &format!(
            "  {:<12} latest window: {now_matched} matched of {total}, {paths} distinct paths; busiest window: {best}; fires at {}\n",
            c.name,
            needs.join(", ")
        );
        if let Some(h) = &held {
            text += &format!("  {:<12} held back: {h}\n", "");
        }
        rules.push(json!({"rule": c.name, "key": k.to_string(), "latest_window": {"matched": now_matched, "requests": total, "distinct_paths": paths},
                          "busiest_window_matched": best, "threshold": c.threshold, "window_seconds": c.window.0,
                          "distinct_paths": c.distinct_paths, "min_ratio": c.min_ratio, "held_back": held}));
    }
    let block = ledger
        .covering(&key, ctx.now)
        .and_then(|n| ledger.blocks.get(&n).map(|b| (n, b)));
    match &block {
        Some((n, b)) => {
            text += &format!(
                "blocked as {n} by {} until {}: {}\n",
                b.rule,
                rfc3339(b.until_ms),
                b.reason()
            )
        }
        None => text += "not blocked\n",
    }
    let history = ledger.history.get(&key);
    if let Some(h) = history {
        text += &format!(
            "offenses remembered: {} (last {})\n",
            h.offenses,
            rfc3339(h.last_ms)
        );
    }
    let audit: Vec<_> = ledger
        .audit
        .iter()
        .filter(|e| match (&e.key, &key) {
            (Key::Net(a), Key::Net(b)) => a.contains(&b.addr()) || b.contains(&a.addr()),
            (a, b) => a == b,
        })
        .collect();
    for e in &audit {
        text += &format!(
            "audit: {} {} by {}: {}\n",
            rfc3339(e.at_ms),
            e.action,
            e.by,
            e.reason
        );
    }
    let v = json!({
        "type": "explain", "ip": target.net().map(|_| &addr), "user": key.user().map(User::as_str), "key": key.to_string(),
        "windows_as_of": rfc3339((i64::from(newest) + 1) * ctx.config.bucket_ms() - 1),
        "rules": rules,
        "block": block.map(|(n, b)| json!({"key": n.to_string(), "ip": n.net().map(|n| n.to_string()), "rule": b.rule, "since": rfc3339(b.since_ms), "until": rfc3339(b.until_ms), "offense": b.offense, "reason": b.reason()})),
        "offenses": history.map(|h| h.offenses),
        "audit": audit.iter().map(|e| json!({"at": rfc3339(e.at_ms), "action": e.action, "by": e.by, "reason": e.reason})).collect::<Vec<_>>(),
    });
    print(&ctx, &v, text.trim_end());
    Ok(ExitCode::SUCCESS)
}
