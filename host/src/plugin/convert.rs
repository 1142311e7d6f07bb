//! Moves values between the SDK's types (the host's in-memory batch) and the types the
//! wasmtime bindings lift and lower. Both mirror the same WIT records, so each conversion
//! moves the column buffers; no value is copied.

use super::bindings::types as w;
use adstream_sdk as s;

macro_rules! same_enum {
    ($from:ty => $to:ty : $($case:ident),*) => {
        impl Convert<$to> for $from {
            fn convert(self) -> $to {
                match self { $(<$from>::$case => <$to>::$case),* }
            }
        }
    };
}

/// A move from one side's type to the other's.
pub trait Convert<T> {
    fn convert(self) -> T;
}

impl<A: Convert<B>, B> Convert<Vec<B>> for Vec<A> {
    fn convert(self) -> Vec<B> {
        self.into_iter().map(Convert::convert).collect()
    }
}

same_enum!(s::ColumnKind => w::ColumnKind: Int64, Float64, Boolean, Text, Dictionary, TimestampMs);
same_enum!(w::ColumnKind => s::ColumnKind: Int64, Float64, Boolean, Text, Dictionary, TimestampMs);

impl Convert<w::Strings> for s::Strings {
    fn convert(self) -> w::Strings {
        w::Strings {
            offsets: self.offsets,
            bytes: self.bytes,
        }
    }
}
impl Convert<s::Strings> for w::Strings {
    fn convert(self) -> s::Strings {
        s::Strings {
            offsets: self.offsets,
            bytes: self.bytes,
        }
    }
}

impl Convert<w::Values> for s::Values {
    fn convert(self) -> w::Values {
        match self {
            s::Values::Int64(v) => w::Values::Int64(v),
            s::Values::Float64(v) => w::Values::Float64(v),
            s::Values::Boolean(v) => w::Values::Boolean(v),
            s::Values::Text(v) => w::Values::Text(v.convert()),
            s::Values::Dictionary(d) => w::Values::Dictionary(w::Dict {
                keys: d.keys,
                values: d.values.convert(),
            }),
            s::Values::TimestampMs(v) => w::Values::TimestampMs(v),
        }
    }
}
impl Convert<s::Values> for w::Values {
    fn convert(self) -> s::Values {
        match self {
            w::Values::Int64(v) => s::Values::Int64(v),
            w::Values::Float64(v) => s::Values::Float64(v),
            w::Values::Boolean(v) => s::Values::Boolean(v),
            w::Values::Text(v) => s::Values::Text(v.convert()),
            w::Values::Dictionary(d) => s::Values::Dictionary(s::Dict {
                keys: d.keys,
                values: d.values.convert(),
            }),
            w::Values::TimestampMs(v) => s::Values::TimestampMs(v),
        }
    }
}

impl Convert<w::Column> for s::Column {
    fn convert(self) -> w::Column {
        w::Column {
            name: self.name,
            values: self.values.convert(),
            valid: self.valid,
        }
    }
}
impl Convert<s::Column> for w::Column {
    fn convert(self) -> s::Column {
        s::Column {
            name: self.name,
            values: self.values.convert(),
            valid: self.valid,
        }
    }
}

impl Convert<w::Batch> for s::Batch {
    fn convert(self) -> w::Batch {
        w::Batch {
            rows: self.rows,
            columns: self.columns.convert(),
        }
    }
}
impl Convert<s::Batch> for w::Batch {
    fn convert(self) -> s::Batch {
        s::Batch {
            rows: self.rows,
            columns: self.columns.convert(),
        }
    }
}

impl Convert<w::Field> for s::Field {
    fn convert(self) -> w::Field {
        w::Field {
            name: self.name,
            kind: self.kind.convert(),
            nullable: self.nullable,
        }
    }
}
impl Convert<s::Field> for w::Field {
    fn convert(self) -> s::Field {
        s::Field {
            name: self.name,
            kind: self.kind.convert(),
            nullable: self.nullable,
        }
    }
}

impl Convert<s::PluginError> for w::PluginError {
    fn convert(self) -> s::PluginError {
        match self {
            w::PluginError::InvalidConfig(m) => s::PluginError::InvalidConfig(m),
            w::PluginError::SchemaMismatch(m) => s::PluginError::SchemaMismatch(m),
            w::PluginError::InvalidInput(m) => s::PluginError::InvalidInput(m),
            w::PluginError::InvalidState(m) => s::PluginError::InvalidState(m),
            w::PluginError::Other(m) => s::PluginError::Other(m),
        }
    }
}

impl Convert<s::Rejection> for w::Rejection {
    fn convert(self) -> s::Rejection {
        s::Rejection {
            row: self.row,
            rule: self.rule,
            message: self.message,
        }
    }
}

impl Convert<s::PluginInfo> for w::PluginInfo {
    fn convert(self) -> s::PluginInfo {
        s::PluginInfo {
            name: self.name,
            version: self.version,
            description: self.description,
        }
    }
}
