//! The traffic model: segments (country × ad format) with their share of requests, fill
//! rate, CTR and eCPM, and how one ad request turns into events.

use super::rng::Rng;
use crate::config::source::{GeneratorConfig, ScenarioKind};
use std::io::Write;

/// One country × ad format segment.
#[derive(Debug, Clone)]
pub struct Segment {
    pub country: String,
    pub format: String,
    pub weight: f64,
    pub ctr: f64,
    pub ecpm: f64,
    pub fill_rate: f64,
}

/// A scenario resolved to a segment and an event-time range (ms after the start).
#[derive(Debug, Clone)]
pub struct Scenario {
    pub kind: ScenarioKind,
    pub from: i64,
    pub to: i64,
    pub segment: usize,
    pub factor: f64,
}

/// Chance that a filled request is shown, and that a click converts.
const SHOW_RATE: f64 = 0.9;
const CVR: f64 = 0.05;
const USERS: u64 = 200_000;
const APPS: u64 = 30;
const CAMPAIGNS: u64 = 80;

const COUNTRIES: [(&str, f64, f64); 5] = [
    ("US", 0.35, 1.5),
    ("KR", 0.2, 1.0),
    ("JP", 0.2, 1.2),
    ("UK", 0.15, 1.1),
    ("DE", 0.1, 1.0),
];
/// (format, weight, CTR, eCPM in USD, fill rate)
const FORMATS: [(&str, f64, f64, f64, f64); 4] = [
    ("banner", 0.4, 0.02, 1.0, 0.95),
    ("interstitial", 0.2, 0.05, 6.0, 0.85),
    ("rewarded_video", 0.2, 0.08, 12.0, 0.8),
    ("native", 0.2, 0.03, 3.0, 0.9),
];
const NETWORKS: [(&str, f64); 5] = [
    ("admob", 0.35),
    ("applovin", 0.25),
    ("unity", 0.15),
    ("ironsource", 0.15),
    ("meta", 0.1),
];

/// The configured model.
pub struct Model {
    pub segments: Vec<Segment>,
    networks: Vec<(String, f64)>,
    pub scenarios: Vec<Scenario>,
}

fn segments(cfg: &GeneratorConfig) -> Vec<Segment> {
    let countries: Vec<(String, f64, f64)> = match &cfg.countries {
        Some(m) => m
            .iter()
            .map(|(c, p)| (c.clone(), p.weight, p.ecpm))
            .collect(),
        None => COUNTRIES
            .iter()
            .map(|&(c, w, e)| (c.to_string(), w, e))
            .collect(),
    };
    let formats: Vec<(String, f64, f64, f64, f64)> = match &cfg.formats {
        Some(m) => m
            .iter()
            .map(|(f, p)| (f.clone(), p.weight, p.ctr, p.ecpm, p.fill_rate))
            .collect(),
        None => FORMATS
            .iter()
            .map(|&(f, w, c, e, r)| (f.to_string(), w, c, e, r))
            .collect(),
    };
    let mut out = Vec::new();
    for (country, cw, cecpm) in &countries {
        for (format, fw, ctr, fecpm, fill) in &formats {
            let mut s = Segment {
                country: country.clone(),
                format: format.clone(),
                weight: cw * fw,
                ctr: *ctr,
                ecpm: fecpm * cecpm,
                fill_rate: *fill,
            };
            for o in cfg
                .segment
                .iter()
                .filter(|o| o.country == *country && o.ad_format == *format)
            {
                s.ctr = o.ctr.unwrap_or(s.ctr);
                s.ecpm = o.ecpm.unwrap_or(s.ecpm);
                s.weight = o.weight.unwrap_or(s.weight);
            }
            out.push(s);
        }
    }
    out
}

impl Model {
    pub fn new(cfg: &GeneratorConfig) -> Result<Model, String> {
        let segments = segments(cfg);
        if segments.is_empty() || segments.iter().all(|s| s.weight <= 0.0) {
            return Err("the generator has no segment with a positive weight".into());
        }
        let networks = match &cfg.networks {
            Some(m) => m.iter().map(|(n, w)| (n.clone(), *w)).collect(),
            None => NETWORKS.iter().map(|&(n, w)| (n.to_string(), w)).collect(),
        };
        let mut scenarios = Vec::new();
        for (i, s) in cfg.scenario.iter().enumerate() {
            let at = s.at.as_millis_i64();
            let len = s.duration.as_millis_i64();
            let segment = segments
                .iter()
                .position(|g| g.country == s.country && g.format == s.ad_format)
                .ok_or_else(|| {
                    format!(
                        "scenario {}: no segment {} {}",
                        i + 1,
                        s.country,
                        s.ad_format
                    )
                })?;
            let factor = s.factor.unwrap_or(s.kind.default_factor());
            scenarios.push(Scenario {
                kind: s.kind,
                from: at,
                to: at + len,
                segment,
                factor,
            });
        }
        Ok(Model {
            segments,
            networks,
            scenarios,
        })
    }

    /// The segments as they are `offset` ms after the start, scenarios applied.
    pub fn at(&self, offset: i64) -> Vec<Segment> {
        let mut segs = self.segments.clone();
        for s in self
            .scenarios
            .iter()
            .filter(|s| (s.from..s.to).contains(&offset))
        {
            let g = &mut segs[s.segment];
            match s.kind {
                ScenarioKind::CtrDrop | ScenarioKind::CtrSpike => {
                    g.ctr = (g.ctr * s.factor).min(1.0)
                }
                ScenarioKind::TrafficSpike => g.weight *= s.factor,
                ScenarioKind::EcpmDrop => g.ecpm *= s.factor,
            }
        }
        segs
    }

    /// The scenarios active `offset` ms after the start, as a bit set; the segment table is
    /// recomputed only when it changes.
    pub fn active(&self, offset: i64) -> u64 {
        self.scenarios
            .iter()
            .enumerate()
            .filter(|(_, s)| (s.from..s.to).contains(&offset))
            .fold(0, |m, (i, _)| m | 1 << (i % 64))
    }

    pub fn pick_network(&self, rng: &mut Rng) -> usize {
        let total: f64 = self.networks.iter().map(|(_, w)| w).sum();
        let mut x = rng.f64() * total;
        for (i, (_, w)) in self.networks.iter().enumerate() {
            if x < *w {
                return i;
            }
            x -= w;
        }
        self.networks.len().saturating_sub(1)
    }

    /// Writes one event of request `r` as a JSON object.
    pub fn write_event(
        &self,
        out: &mut Vec<u8>,
        id: (u64, u64),
        time: i64,
        r: &Request,
        kind: Kind,
    ) {
        let network = r
            .network
            .and_then(|i| self.networks.get(i))
            .map(|(n, _)| n.as_str());
        write_event(
            out,
            id,
            time,
            &self.segments[r.segment],
            r.user,
            r.campaign,
            network,
            kind,
        );
    }
}

/// Picks a segment by weight from a cumulative table.
pub fn pick(cumulative: &[f64], rng: &mut Rng) -> usize {
    let x = rng.f64() * cumulative.last().copied().unwrap_or(0.0);
    cumulative
        .partition_point(|&c| c <= x)
        .min(cumulative.len() - 1)
}

pub fn cumulative(segs: &[Segment]) -> Vec<f64> {
    segs.iter()
        .scan(0.0, |acc, s| {
            *acc += s.weight.max(0.0);
            Some(*acc)
        })
        .collect()
}

/// The parts of an ad request its events share.
#[derive(Clone, Copy)]
pub struct Request {
    pub segment: usize,
    pub user: u64,
    /// Index into the model's networks; `None` when the request went unfilled.
    pub network: Option<usize>,
    pub campaign: u64,
}

/// One event of a request.
#[derive(Clone, Copy)]
pub enum Kind {
    Request,
    Impression { revenue: f64, cost: f64 },
    Click,
    Conversion { value: f64 },
}

fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z ^ (z >> 31)
}

/// One in ten users has an IPv6 address.
fn write_ip(out: &mut Vec<u8>, h: u64) {
    let _ = if h.is_multiple_of(10) {
        write!(
            out,
            "2001:db8:{:x}:{:x}::{:x}",
            h >> 48,
            (h >> 32) & 0xffff,
            h & 0xffff
        )
    } else {
        write!(
            out,
            "{}.{}.{}.{}",
            1 + (h >> 56) % 223,
            (h >> 48) & 255,
            (h >> 40) & 255,
            (h >> 32) & 255
        )
    };
}

#[allow(clippy::too_many_arguments)]
fn write_event(
    out: &mut Vec<u8>,
    id: (u64, u64),
    time: i64,
    s: &Segment,
    user: u64,
    campaign: u64,
    network: Option<&str>,
    kind: Kind,
) {
    let type_name = match kind {
        Kind::Request => "request",
        Kind::Impression { .. } => "impression",
        Kind::Click => "click",
        Kind::Conversion { .. } => "conversion",
    };
    let h = mix(user);
    let app = h % APPS;
    let _ = write!(
        out,
        r#"{{"event_id":"e{:x}-{}","event_time":{time},"event_type":"{type_name}","user_id":"u{:06}","device_id":"d{:016x}","ip":""#,
        id.0,
        id.1,
        user,
        mix(h)
    );
    write_ip(out, h);
    let _ = write!(
        out,
        r#"","country":"{}","ad_format":"{}","placement_id":"app{app:02}-{}","campaign_id":"cmp{:03}","advertiser_id":"adv{:02}","network":"#,
        s.country,
        s.format,
        s.format,
        campaign,
        campaign % 25
    );
    match network {
        Some(n) => {
            let _ = write!(out, r#""{n}""#);
        }
        None => out.extend_from_slice(b"null"),
    }
    let os = if h % 5 < 3 { "android" } else { "ios" };
    let _ = write!(out, r#","os":"{os}","app_id":"app{app:02}""#);
    match kind {
        Kind::Impression { revenue, cost } => {
            let _ = write!(out, r#","revenue":{revenue:.6},"cost":{cost:.6}"#);
        }
        Kind::Conversion { value } => {
            let _ = write!(out, r#","conversion_value":{value:.2}"#);
        }
        Kind::Request | Kind::Click => {}
    }
    out.push(b'}');
}

/// The events one request produces: the request, then (if filled and shown) an
/// impression, a click and a conversion, each with its probability.
pub fn request_events(s: &Segment, filled: bool, rng: &mut Rng, out: &mut Vec<Kind>) {
    out.clear();
    out.push(Kind::Request);
    if !filled || !rng.chance(SHOW_RATE) {
        return;
    }
    let revenue = rng.lognormal(s.ecpm / 1000.0, 0.5);
    out.push(Kind::Impression {
        revenue,
        cost: revenue * 1.3,
    });
    if rng.chance(s.ctr) {
        out.push(Kind::Click);
        if rng.chance(CVR) {
            out.push(Kind::Conversion {
                value: rng.lognormal(20.0, 0.8),
            });
        }
    }
}

/// Draws the parts of a request that do not depend on its outcome.
pub fn draw_request(model: &Model, segs: &[Segment], seg: usize, rng: &mut Rng) -> (Request, bool) {
    let filled = rng.chance(segs[seg].fill_rate);
    let network = filled.then(|| model.pick_network(rng));
    let r = Request {
        segment: seg,
        user: rng.below(USERS),
        network,
        campaign: rng.below(CAMPAIGNS),
    };
    (r, filled)
}

/// Damages the event written from `start` on, in one of four ways an ad server's log can
/// be wrong: cut off mid-record, a required field missing, a negative revenue, an event
/// type nobody knows.
pub fn corrupt(out: &mut Vec<u8>, start: usize, damage: u64) {
    let record = String::from_utf8_lossy(&out[start..]).into_owned();
    let damaged = match damage {
        0 => record[..record.len() / 2].to_string(),
        1 => record.replacen(r#""country":"#, r#""kountry":"#, 1),
        2 if record.contains(r#""revenue":"#) => {
            record.replacen(r#""revenue":"#, r#""revenue":-"#, 1)
        }
        _ => {
            let from = record.find(r#""event_type":""#).map_or(0, |i| i + 14);
            let to = record[from..].find('"').map_or(from, |i| from + i);
            format!("{}bogus{}", &record[..from], &record[to..])
        }
    };
    out.truncate(start);
    out.extend_from_slice(damaged.as_bytes());
}
