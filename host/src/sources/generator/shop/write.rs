//! Shop events as JSON objects, one flat shape for every event type (fields an event
//! does not have are left out), and the ways a shop's log is seen to go wrong.

use super::catalogue::Catalogue;
use super::{Order, Payment, Shopper, Status, Step};
use crate::sources::generator::rng::Rng;
use std::io::Write;

pub struct Writer<'a> {
    pub out: &'a mut Vec<u8>,
    pub id: (u64, u64),
    pub time: i64,
    pub catalogue: &'a Catalogue,
}

/// Cents as a decimal amount.
struct Money(i64);

impl std::fmt::Display for Money {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        write!(f, "{sign}{}.{:02}", self.0.abs() / 100, self.0.abs() % 100)
    }
}

impl Writer<'_> {
    fn head(&mut self, kind: &str, user: u64) {
        let _ = write!(
            self.out,
            r#"{{"event_id":"s{:x}-{}","event_time":{},"event_type":"{kind}","user_id":"u{user:06}""#,
            self.id.0, self.id.1, self.time
        );
    }

    fn product(&mut self, product: usize, cents: i64) {
        let p = &self.catalogue.products[product];
        let category = Catalogue::category_name(p.category);
        let _ = write!(
            self.out,
            r#","product_id":"{}","category":"{category}","price":{}"#,
            p.id,
            Money(cents)
        );
    }

    pub fn step(mut self, step: &Step, who: Shopper, rng: &mut Rng) {
        let kind = match step {
            Step::PageView => "page_view",
            Step::View(..) => "product_view",
            Step::Cart(..) => "add_to_cart",
            Step::Order(_) => "order",
        };
        self.head(kind, who.user);
        let _ = write!(self.out, r#","session_id":"ss{}""#, who.session);
        match step {
            Step::PageView => {}
            Step::View(product, cents) => self.product(*product, *cents),
            Step::Cart(product, cents, quantity) => {
                self.product(*product, *cents);
                let _ = write!(self.out, r#","quantity":{quantity}"#);
            }
            Step::Order(order) => self.order(order, who.user, rng),
        }
        self.out.push(b'}');
    }

    fn order(&mut self, order: &Order, user: u64, rng: &mut Rng) {
        let postcode = 10_000 + (user * 7919) % 89_999;
        let _ = write!(
            self.out,
            r#","order_id":"o{}","email":"user{user}@example.com","address":"{} Market Street","postcode":"{postcode}","items":["#,
            order.id,
            1 + rng.below(300)
        );
        for (i, item) in order.items.iter().enumerate() {
            let p = &self.catalogue.products[item.product];
            let _ = write!(
                self.out,
                r#"{}{{"product_id":"{}","category":"{}","price":{},"quantity":{}}}"#,
                if i == 0 { "" } else { "," },
                p.id,
                Catalogue::category_name(p.category),
                Money(item.cents),
                item.quantity
            );
        }
        let coupon = if order.coupon {
            r#""WELCOME10""#
        } else {
            "null"
        };
        let _ = write!(
            self.out,
            r#"],"total":{},"currency":"USD","coupon":{coupon}"#,
            Money(order.total_cents())
        );
    }

    pub fn payment(mut self, payment: &Payment, method: &str, user: u64) {
        self.head("payment", user);
        let status = match payment.status {
            Status::Authorised => "authorised",
            Status::Failed => "failed",
            Status::Refunded => "refunded",
        };
        let _ = write!(
            self.out,
            r#","payment_id":"pay{}","order_id":"o{}","method":"{method}","amount":{},"status":"{status}"}}"#,
            payment.id,
            payment.order,
            Money(payment.cents)
        );
    }
}

/// Damages the event written from `start` on, in one of four ways: cut off mid-record,
/// the event type missing, a negative price or amount, an email that is not one.
pub fn corrupt(out: &mut Vec<u8>, start: usize, damage: u64) {
    let record = String::from_utf8_lossy(&out[start..]).into_owned();
    let damaged = match damage {
        0 => record[..record.len() / 2].to_string(),
        1 => record.replacen(r#""event_type":"#, r#""type":"#, 1),
        2 if record.contains(r#""price":"#) => record.replacen(r#""price":"#, r#""price":-"#, 1),
        2 => record.replacen(r#""amount":"#, r#""amount":-"#, 1),
        _ => record.replacen("@example.com", " at example dot com", 1),
    };
    out.truncate(start);
    out.extend_from_slice(damaged.as_bytes());
}
