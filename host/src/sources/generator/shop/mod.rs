//! The generator's shop mode (seed 000): shoppers' sessions of page and product views,
//! add-to-cart, orders and their payments. Payments arrive seconds after their order,
//! some minutes late, some twice, some never; failed ones are often retried; a few are
//! refunded. Four scenarios bend it: a viral product, a payment provider outage, a price
//! bug and a broken checkout.

mod catalogue;
mod write;

pub use write::corrupt;

use super::rng::Rng;
use crate::config::source::{ShopConfig, ShopScenarioKind};
use catalogue::{Catalogue, pick};
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// (method, share of payments)
const METHODS: [(&str, f64); 4] = [
    ("card", 0.6),
    ("paypal", 0.2),
    ("apple_pay", 0.12),
    ("bank_transfer", 0.08),
];
/// Chance that a product view adds it to the cart, and that a cart is ordered.
const CART_RATE: f64 = 0.25;
const ORDER_RATE: f64 = 0.5;
/// Orders never paid, failed payments tried again, paid orders refunded, payments whose
/// amount is not their order's total (a provider's rounding bug).
const ABANDON_RATE: f64 = 0.03;
const RETRY_RATE: f64 = 0.6;
const REFUND_RATE: f64 = 0.005;
const MISMATCH_RATE: f64 = 0.002;

struct Scenario {
    kind: ShopScenarioKind,
    from: i64,
    to: i64,
    /// Product, method or category index; `None`: all.
    target: Option<usize>,
    factor: f64,
}

/// One line of an order.
#[derive(Clone)]
pub struct Item {
    pub product: usize,
    pub cents: i64,
    pub quantity: i64,
}

#[derive(Clone)]
pub struct Order {
    pub id: u64,
    pub items: Vec<Item>,
    pub coupon: bool,
}

impl Order {
    pub fn total_cents(&self) -> i64 {
        self.items.iter().map(|i| i.cents * i.quantity).sum()
    }
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    Authorised,
    Failed,
    Refunded,
}

#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Payment {
    pub id: u64,
    pub order: u64,
    pub method: usize,
    pub cents: i64,
    pub status: Status,
}

/// One event of a session.
#[derive(Clone)]
pub enum Step {
    PageView,
    View(usize, i64),
    /// Product, price in cents, quantity.
    Cart(usize, i64, i64),
    Order(Order),
}

/// Who the current session is.
#[derive(Clone, Copy)]
pub struct Shopper {
    pub session: u64,
    pub user: u64,
}

pub struct Shop {
    catalogue: Catalogue,
    cfg: ShopConfig,
    scenarios: Vec<Scenario>,
    shopper: Shopper,
    /// The session's events not yet written, last first.
    session: Vec<Step>,
    /// Payments waiting for their event time (ms after the start), with their shopper.
    due: BinaryHeap<Reverse<(i64, u64, Payment, u64)>>,
    sessions: u64,
    orders: u64,
    payments: u64,
}

impl Shop {
    pub fn new(cfg: &ShopConfig) -> Result<Shop, String> {
        let catalogue = Catalogue::new(cfg.products);
        let scenarios = (cfg.scenario.iter().enumerate())
            .map(|(i, s)| {
                Self::scenario(&catalogue, s).map_err(|e| format!("shop scenario {}: {e}", i + 1))
            })
            .collect::<Result<_, _>>()?;
        Ok(Shop {
            catalogue,
            cfg: cfg.clone(),
            scenarios,
            shopper: Shopper {
                session: 0,
                user: 0,
            },
            session: Vec::new(),
            due: BinaryHeap::new(),
            sessions: 0,
            orders: 0,
            payments: 0,
        })
    }

    fn scenario(
        catalogue: &Catalogue,
        s: &crate::config::source::ShopScenarioConfig,
    ) -> Result<Scenario, String> {
        let target = match (s.kind, s.target.as_deref()) {
            (_, None) => None,
            (ShopScenarioKind::ViralProduct, Some(p)) => Some(
                (catalogue.products.iter().position(|x| x.id == p)).ok_or(format!(
                    "no product `{p}` (p00000 … p{:05})",
                    catalogue.products.len() - 1
                ))?,
            ),
            (ShopScenarioKind::PaymentOutage, Some(m)) => {
                Some((METHODS.iter().position(|x| x.0 == m)).ok_or(format!(
                    "no payment method `{m}` (card, paypal, apple_pay, bank_transfer)"
                ))?)
            }
            (ShopScenarioKind::PriceBug, Some(c)) => {
                Some(Catalogue::category(c).ok_or(format!("no category `{c}`"))?)
            }
            (ShopScenarioKind::CheckoutBroken, Some(_)) => {
                return Err("checkout_broken takes no target".into());
            }
        };
        let target = match (s.kind, target) {
            (ShopScenarioKind::ViralProduct, None) => Some(49.min(catalogue.products.len() - 1)),
            (_, t) => t,
        };
        let factor = s.factor.unwrap_or(s.kind.default_factor());
        if !(factor >= 0.0 && factor.is_finite()) {
            return Err(format!("factor = {factor} (must be ≥ 0)"));
        }
        let from = s.at.as_millis_i64();
        Ok(Scenario {
            kind: s.kind,
            from,
            to: from + s.duration.as_millis_i64(),
            target,
            factor,
        })
    }

    /// The active scenario of `kind` at `offset` that applies to `target`.
    fn factor(&self, kind: ShopScenarioKind, offset: i64, target: usize) -> Option<f64> {
        (self.scenarios.iter())
            .find(|s| {
                s.kind == kind
                    && (s.from..s.to).contains(&offset)
                    && s.target.is_none_or(|t| t == target)
            })
            .map(|s| s.factor)
    }

    /// Traffic at event time `time` relative to the day's mean: low at night, high in the
    /// evening, a little higher at weekends.
    pub fn traffic(time: i64) -> f64 {
        let hour = (time.rem_euclid(86_400_000)) as f64 / 3_600_000.0;
        let day = time.div_euclid(86_400_000);
        // 1970-01-01 was a Thursday: days 2 and 3 of each week are Saturday and Sunday.
        let weekend = if matches!(day.rem_euclid(7), 2 | 3) {
            1.2
        } else {
            1.0
        };
        weekend * (1.0 + 0.6 * (std::f64::consts::TAU * (hour - 15.0) / 24.0).sin())
    }

    /// Writes the next event at `offset` ms after the start (event time `time`).
    pub fn write_next(
        &mut self,
        offset: i64,
        time: i64,
        id: (u64, u64),
        rng: &mut Rng,
        out: &mut Vec<u8>,
    ) {
        let due = self.due.peek().is_some_and(|Reverse(d)| d.0 <= offset);
        if let Some(Reverse((_, _, payment, user))) = due.then(|| self.due.pop()).flatten() {
            let w = write::Writer {
                out,
                id,
                time,
                catalogue: &self.catalogue,
            };
            return w.payment(&payment, METHODS[payment.method].0, user);
        }
        if self.session.is_empty() {
            self.new_session(offset, rng);
        }
        let Some(step) = self.session.pop() else {
            return;
        };
        let w = write::Writer {
            out,
            id,
            time,
            catalogue: &self.catalogue,
        };
        w.step(&step, self.shopper, rng);
        if let Step::Order(order) = step {
            self.schedule_payments(&order, offset, rng);
        }
    }

    fn new_session(&mut self, offset: i64, rng: &mut Rng) {
        self.sessions += 1;
        self.shopper = Shopper {
            session: self.sessions,
            user: rng.below(self.cfg.users.max(1)),
        };
        let viral = (self.scenarios.iter())
            .find(|s| s.kind == ShopScenarioKind::ViralProduct && (s.from..s.to).contains(&offset));
        let mut steps = vec![Step::PageView];
        let mut cart = Vec::new();
        let views = 1 + (rng.lognormal(2.5, 0.7) as usize).min(20);
        for _ in 0..views {
            let product = match viral {
                Some(v) if rng.chance(v.factor) => v.target.unwrap_or(0),
                _ => self.catalogue.draw(rng),
            };
            let p = &self.catalogue.products[product];
            let bug = self.factor(ShopScenarioKind::PriceBug, offset, p.category);
            let cents = bug.map_or(p.cents, |f| ((p.cents as f64 * f).round() as i64).max(1));
            steps.push(Step::View(product, cents));
            if rng.chance(CART_RATE) {
                let quantity = 1 + (rng.below(10) / 7) as i64 + i64::from(rng.chance(0.05));
                steps.push(Step::Cart(product, cents, quantity));
                cart.push(Item {
                    product,
                    cents,
                    quantity,
                });
            }
        }
        let order_rate = ORDER_RATE
            * self
                .factor(ShopScenarioKind::CheckoutBroken, offset, 0)
                .unwrap_or(1.0);
        if !cart.is_empty() && rng.chance(order_rate) {
            self.orders += 1;
            steps.push(Step::Order(Order {
                id: self.orders,
                items: cart,
                coupon: rng.chance(0.1),
            }));
        }
        steps.reverse();
        self.session = steps;
    }

    /// The payment events an order will have, each queued for its time.
    fn schedule_payments(&mut self, order: &Order, offset: i64, rng: &mut Rng) {
        if rng.chance(ABANDON_RATE) {
            return;
        }
        let user = self.shopper.user;
        let late = rng.chance(self.cfg.late_payments);
        let mut at = offset
            + if late {
                60_000 + rng.below(540_000) as i64
            } else {
                rng.lognormal(3_000.0, 0.8) as i64
            };
        let mut method = pick(&METHODS.map(|m| m.1), rng);
        loop {
            let failure = (self.factor(ShopScenarioKind::PaymentOutage, offset, method))
                .unwrap_or(self.cfg.failure_rate);
            let failed = rng.chance(failure);
            let mut cents = order.total_cents();
            if rng.chance(MISMATCH_RATE) {
                cents += 100;
            }
            let status = if failed {
                Status::Failed
            } else {
                Status::Authorised
            };
            let payment = self.payment(order.id, method, cents, status);
            if rng.chance(self.cfg.duplicate_payments) {
                self.queue(at + 1_000, payment.clone(), user);
            }
            self.queue(at, payment, user);
            if !failed {
                if rng.chance(REFUND_RATE) {
                    let refund = self.payment(order.id, method, cents, Status::Refunded);
                    self.queue(at + 60_000, refund, user);
                }
                return;
            }
            if !rng.chance(RETRY_RATE) {
                return;
            }
            at += 10_000;
            method = pick(&METHODS.map(|m| m.1), rng);
        }
    }

    fn payment(&mut self, order: u64, method: usize, cents: i64, status: Status) -> Payment {
        self.payments += 1;
        Payment {
            id: self.payments,
            order,
            method,
            cents,
            status,
        }
    }

    fn queue(&mut self, at: i64, payment: Payment, user: u64) {
        self.due.push(Reverse((at, payment.id, payment, user)));
    }
}

#[cfg(test)]
mod tests;
