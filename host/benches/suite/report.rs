//! Repeated measurements summarised as median and spread, and the markdown they become.

/// A measurement repeated: its median and range.
#[derive(Clone, Copy)]
pub struct Stat {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Stat {
    pub fn of(mut values: Vec<f64>) -> Stat {
        values.sort_by(f64::total_cmp);
        Stat {
            median: values[values.len() / 2],
            min: values[0],
            max: values[values.len() - 1],
        }
    }

    /// The same measurement with `cost` (measured apart) taken off every figure.
    pub fn minus(&self, cost: f64) -> Stat {
        Stat {
            median: self.median - cost,
            min: self.min - cost,
            max: self.max - cost,
        }
    }

    /// `median (min–max)` with `digits` decimals.
    pub fn show(&self, digits: usize) -> String {
        format!(
            "{:.digits$} ({:.digits$}–{:.digits$})",
            self.median, self.min, self.max
        )
    }

    /// Events per second shown in thousands or millions.
    pub fn rate(&self) -> String {
        let unit = |v: f64| {
            if self.median >= 1e6 {
                format!("{:.2}M", v / 1e6)
            } else {
                format!("{:.0}k", v / 1e3)
            }
        };
        format!(
            "{} ({}–{})",
            unit(self.median),
            unit(self.min),
            unit(self.max)
        )
    }
}

/// Runs `f` `n` times and summarises what it returns.
pub fn repeat(n: usize, mut f: impl FnMut() -> f64) -> Stat {
    Stat::of((0..n).map(|_| f()).collect())
}

/// One section of the report: a heading, what was measured, and a table.
pub struct Section {
    pub title: &'static str,
    pub about: String,
    pub header: Vec<&'static str>,
    pub rows: Vec<Vec<String>>,
}

impl Section {
    pub fn markdown(&self) -> String {
        let mut out = format!("## {}\n\n{}\n\n", self.title, self.about);
        out += &format!("| {} |\n", self.header.join(" | "));
        out += &format!("|{}\n", "---|".repeat(self.header.len()));
        for row in &self.rows {
            out += &format!("| {} |\n", row.join(" | "));
        }
        out
    }
}
