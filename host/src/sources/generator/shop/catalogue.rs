//! The shop's catalogue: products in categories, with prices, and popularity by Zipf's
//! law (the product of rank r is viewed in proportion to 1/r).

use super::super::rng::Rng;

/// (category, share of products, median price in USD)
const CATEGORIES: [(&str, f64, f64); 7] = [
    ("electronics", 0.2, 150.0),
    ("fashion", 0.25, 40.0),
    ("home", 0.15, 60.0),
    ("beauty", 0.12, 25.0),
    ("books", 0.1, 15.0),
    ("sports", 0.1, 50.0),
    ("toys", 0.08, 30.0),
];

pub struct Product {
    pub id: String,
    pub category: usize,
    pub cents: i64,
}

pub struct Catalogue {
    pub products: Vec<Product>,
    /// Cumulative popularity, for drawing a product in O(log n).
    cumulative: Vec<f64>,
}

impl Catalogue {
    /// `n` products; each one's category and price are drawn from a generator seeded by
    /// its rank, so the catalogue is the same for every seed of the event stream.
    pub fn new(n: u32) -> Catalogue {
        let mut rng = Rng::new(0x5eed_c47a);
        let shares: Vec<f64> = CATEGORIES.iter().map(|c| c.1).collect();
        let products = (0..n.max(1))
            .map(|rank| {
                let category = pick(&shares, &mut rng);
                let price = rng.lognormal(CATEGORIES[category].2, 0.6).max(1.0);
                Product {
                    id: format!("p{rank:05}"),
                    category,
                    // Prices end in .99, as shops' do.
                    cents: price.floor() as i64 * 100 + 99,
                }
            })
            .collect::<Vec<_>>();
        let mut total = 0.0;
        let cumulative = (1..=products.len())
            .map(|r| {
                total += 1.0 / r as f64;
                total
            })
            .collect();
        Catalogue {
            products,
            cumulative,
        }
    }

    pub fn category_name(index: usize) -> &'static str {
        CATEGORIES[index].0
    }

    /// The index of a category by name.
    pub fn category(name: &str) -> Option<usize> {
        CATEGORIES.iter().position(|c| c.0 == name)
    }

    /// A product by popularity.
    pub fn draw(&self, rng: &mut Rng) -> usize {
        let total = self.cumulative.last().copied().unwrap_or(1.0);
        let x = rng.f64() * total;
        self.cumulative
            .partition_point(|&c| c <= x)
            .min(self.products.len() - 1)
    }
}

/// An index drawn in proportion to `weights`.
pub fn pick(weights: &[f64], rng: &mut Rng) -> usize {
    let mut x = rng.f64() * weights.iter().sum::<f64>();
    for (i, w) in weights.iter().enumerate() {
        if x < *w {
            return i;
        }
        x -= w;
    }
    weights.len() - 1
}
