//! The `export_*!` macros that turn a role implementation into a component's exports.
//!
//! A component is single-threaded and the generated exports are free functions, so the
//! plugin's state lives in one static [`Slot`] per component, filled by `configure`.

#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub mod __export {
    use crate::PluginError;
    use core::cell::RefCell;

    /// Holds the configured plugin.
    pub struct Slot<T>(RefCell<Option<T>>);

    // SAFETY: a component instance runs on one thread; the host never calls into the same
    // instance from two threads, and wasm32 without the threads proposal has no others.
    unsafe impl<T> Sync for Slot<T> {}

    impl<T> Slot<T> {
        pub const fn new() -> Self {
            Slot(RefCell::new(None))
        }

        pub fn set(&self, plugin: T) {
            *self.0.borrow_mut() = Some(plugin);
        }

        pub fn with<R>(
            &self,
            f: impl FnOnce(&mut T) -> Result<R, PluginError>,
        ) -> Result<R, PluginError> {
            match self.0.borrow_mut().as_mut() {
                Some(plugin) => f(plugin),
                None => Err(PluginError::Other("configure was not called".to_string())),
            }
        }
    }
}

/// The plugin's name, version and description, from its `Cargo.toml`.
#[doc(hidden)]
#[macro_export]
macro_rules! __plugin_info {
    () => {
        $crate::PluginInfo {
            name: env!("CARGO_PKG_NAME").to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            description: env!("CARGO_PKG_DESCRIPTION").to_string(),
        }
    };
}

/// Exports a [`Transform`](crate::Transform) implementation as the component's
/// `transform` world.
#[macro_export]
macro_rules! export_transform {
    ($plugin:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            use $crate::{Batch, Field, PluginError, PluginInfo, Setup};
            static STATE: $crate::__export::Slot<$plugin> = $crate::__export::Slot::new();
            struct AdstreamExport;
            impl $crate::bindings::transform::Guest for AdstreamExport {
                fn info() -> PluginInfo {
                    $crate::__plugin_info!()
                }
                fn configure(setup: Setup) -> Result<Vec<Field>, PluginError> {
                    let (plugin, fields) = <$plugin as $crate::Transform>::configure(&setup)?;
                    STATE.set(plugin);
                    Ok(fields)
                }
                fn transform(input: Batch) -> Result<Batch, PluginError> {
                    STATE.with(|p| <$plugin as $crate::Transform>::transform(p, input))
                }
            }
            $crate::__export_transform_impl!(AdstreamExport with_types_in $crate::bindings::transform);
        };
    };
}

/// Exports a [`Validate`](crate::Validate) implementation as the `validate` world.
#[macro_export]
macro_rules! export_validate {
    ($plugin:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            use $crate::{Batch, Field, PluginError, PluginInfo, Rejection, Setup};
            static STATE: $crate::__export::Slot<$plugin> = $crate::__export::Slot::new();
            struct AdstreamExport;
            impl $crate::bindings::validate::Guest for AdstreamExport {
                fn info() -> PluginInfo {
                    $crate::__plugin_info!()
                }
                fn configure(setup: Setup) -> Result<Vec<Field>, PluginError> {
                    let plugin = <$plugin as $crate::Validate>::configure(&setup)?;
                    STATE.set(plugin);
                    Ok(setup.input)
                }
                fn validate(input: Batch, watermark: i64) -> Result<Vec<Rejection>, PluginError> {
                    STATE.with(|p| <$plugin as $crate::Validate>::validate(p, &input, watermark))
                }
            }
            $crate::__export_validate_impl!(AdstreamExport with_types_in $crate::bindings::validate);
        };
    };
}

/// Exports an [`Aggregate`](crate::Aggregate) implementation as the `aggregate` world.
#[macro_export]
macro_rules! export_aggregate {
    ($plugin:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            use $crate::{AggregateOutput, Batch, Field, PluginError, PluginInfo, Setup};
            static STATE: $crate::__export::Slot<$plugin> = $crate::__export::Slot::new();
            struct AdstreamExport;
            impl $crate::bindings::aggregate::Guest for AdstreamExport {
                fn info() -> PluginInfo {
                    $crate::__plugin_info!()
                }
                fn configure(setup: Setup) -> Result<Vec<Field>, PluginError> {
                    let (plugin, fields) = <$plugin as $crate::Aggregate>::configure(&setup)?;
                    STATE.set(plugin);
                    Ok(fields)
                }
                fn aggregate(input: Batch, watermark: i64) -> Result<AggregateOutput, PluginError> {
                    STATE.with(|p| <$plugin as $crate::Aggregate>::aggregate(p, &input, watermark))
                }
                fn flush() -> Result<Batch, PluginError> {
                    STATE.with(|p| <$plugin as $crate::Aggregate>::flush(p))
                }
                fn snapshot() -> Result<Vec<u8>, PluginError> {
                    STATE.with(|p| <$plugin as $crate::Aggregate>::snapshot(p))
                }
                fn restore(state: Vec<u8>) -> Result<(), PluginError> {
                    STATE.with(|p| <$plugin as $crate::Aggregate>::restore(p, &state))
                }
            }
            $crate::__export_aggregate_impl!(AdstreamExport with_types_in $crate::bindings::aggregate);
        };
    };
}

/// Exports a [`Detect`](crate::Detect) implementation as the `detect` world.
#[macro_export]
macro_rules! export_detect {
    ($plugin:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            use $crate::{Batch, Field, PluginError, PluginInfo, Setup};
            static STATE: $crate::__export::Slot<$plugin> = $crate::__export::Slot::new();
            struct AdstreamExport;
            impl $crate::bindings::detect::Guest for AdstreamExport {
                fn info() -> PluginInfo {
                    $crate::__plugin_info!()
                }
                fn configure(setup: Setup) -> Result<Vec<Field>, PluginError> {
                    let (plugin, fields) = <$plugin as $crate::Detect>::configure(&setup)?;
                    STATE.set(plugin);
                    Ok(fields)
                }
                fn detect(windows: Batch) -> Result<Batch, PluginError> {
                    STATE.with(|p| <$plugin as $crate::Detect>::detect(p, &windows))
                }
                fn snapshot() -> Result<Vec<u8>, PluginError> {
                    STATE.with(|p| <$plugin as $crate::Detect>::snapshot(p))
                }
                fn restore(state: Vec<u8>) -> Result<(), PluginError> {
                    STATE.with(|p| <$plugin as $crate::Detect>::restore(p, &state))
                }
            }
    $crate::__export_detect_impl!(AdstreamExport with_types_in $crate::bindings::detect);
        };
    };
}

/// Exports a [`Format`](crate::Format) implementation as the `format` world.
#[macro_export]
macro_rules! export_format {
    ($plugin:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            use $crate::{Batch, Field, PluginError, PluginInfo, Setup};
            static STATE: $crate::__export::Slot<$plugin> = $crate::__export::Slot::new();
            struct AdstreamExport;
            impl $crate::bindings::format::Guest for AdstreamExport {
                fn info() -> PluginInfo {
                    $crate::__plugin_info!()
                }
                fn configure(setup: Setup) -> Result<Vec<Field>, PluginError> {
                    let (plugin, fields) = <$plugin as $crate::Format>::configure(&setup)?;
                    STATE.set(plugin);
                    Ok(fields)
                }
                fn format(alerts: Batch) -> Result<Batch, PluginError> {
                    STATE.with(|p| <$plugin as $crate::Format>::format(p, &alerts))
                }
            }
    $crate::__export_format_impl!(AdstreamExport with_types_in $crate::bindings::format);
        };
    };
}
