//! Declaring the input columns a plugin reads (see `host.reads` in the WIT). Natively (in
//! unit tests) the declaration goes to a thread-local that [`declared`] returns.

/// Tells the host, from `configure`, that this plugin reads only `columns` of its input:
/// the others then never cross the boundary. For `validate`, `aggregate` and `detect`
/// plugins; a name the input lacks fails `configure`.
pub fn reads(columns: &[&str]) {
    imp::reads(columns)
}

#[cfg(target_arch = "wasm32")]
mod imp {
    pub fn reads(columns: &[&str]) {
        let owned: Vec<String> = columns.iter().map(|c| c.to_string()).collect();
        crate::bindings::host::reads(&owned);
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod imp {
    use std::cell::RefCell;

    thread_local! {
        static DECLARED: RefCell<Option<Vec<String>>> = const { RefCell::new(None) };
    }

    pub fn reads(columns: &[&str]) {
        let owned = columns.iter().map(|c| c.to_string()).collect();
        DECLARED.with(|d| *d.borrow_mut() = Some(owned));
    }

    pub fn declared() -> Option<Vec<String>> {
        DECLARED.with(|d| d.borrow_mut().take())
    }
}

/// The columns declared natively since the last call (unit tests only).
#[cfg(not(target_arch = "wasm32"))]
pub use imp::declared;
