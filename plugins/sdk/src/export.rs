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

/// What every role's export has: the plugin's state in one static slot, `info`, and
/// `configure` (which fills the slot). `$configure` turns the setup into the plugin and
/// its output columns; the role's own methods come in `{ ... }`.
#[doc(hidden)]
#[macro_export]
macro_rules! __export_role {
    ($plugin:ty, $world:ident, $export_impl:ident, |$setup:ident| $configure:expr, { $($methods:tt)* }) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            #[allow(unused_imports)]
            use $crate::{AggregateOutput, Batch, Field, PluginError, PluginInfo, Rejection, Setup};
            static STATE: $crate::__export::Slot<$plugin> = $crate::__export::Slot::new();
            struct AdstreamExport;
            impl $crate::bindings::$world::Guest for AdstreamExport {
                fn info() -> PluginInfo {
                    $crate::__plugin_info!()
                }
                fn configure($setup: Setup) -> Result<Vec<Field>, PluginError> {
                    let (plugin, fields) = $configure;
                    STATE.set(plugin);
                    Ok(fields)
                }
                $($methods)*
            }
            $crate::$export_impl!(AdstreamExport with_types_in $crate::bindings::$world);
        };
    };
}

/// `snapshot` and `restore` for the stateful roles, inside [`__export_role!`].
#[doc(hidden)]
#[macro_export]
macro_rules! __export_state {
    ($plugin:ty, $role:path) => {
        fn snapshot() -> Result<Vec<u8>, PluginError> {
            STATE.with(|p| <$plugin as $role>::snapshot(p))
        }
        fn restore(state: Vec<u8>) -> Result<(), PluginError> {
            STATE.with(|p| <$plugin as $role>::restore(p, &state))
        }
    };
}

/// Exports a [`Transform`](crate::Transform) implementation as the component's
/// `transform` world.
#[macro_export]
macro_rules! export_transform {
    ($plugin:ty) => {
        $crate::__export_role!(
            $plugin,
            transform,
            __export_transform_impl,
            |setup| <$plugin as $crate::Transform>::configure(&setup)?,
            {
                fn transform(input: Batch) -> Result<Batch, PluginError> {
                    STATE.with(|p| <$plugin as $crate::Transform>::transform(p, input))
                }
            }
        );
    };
}

/// Exports a [`Validate`](crate::Validate) implementation as the `validate` world.
#[macro_export]
macro_rules! export_validate {
    ($plugin:ty) => {
        $crate::__export_role!(
            $plugin,
            validate,
            __export_validate_impl,
            |setup| (
                <$plugin as $crate::Validate>::configure(&setup)?,
                setup.input
            ),
            {
                fn validate(input: Batch, watermark: i64) -> Result<Vec<Rejection>, PluginError> {
                    STATE.with(|p| <$plugin as $crate::Validate>::validate(p, &input, watermark))
                }
            }
        );
    };
}

/// Exports a [`StatefulValidate`](crate::StatefulValidate) implementation as the
/// `stateful-validate` world: a validate stage whose state is checkpointed.
#[macro_export]
macro_rules! export_stateful_validate {
    ($plugin:ty) => {
        $crate::__export_role!(
            $plugin,
            stateful_validate,
            __export_stateful_validate_impl,
            |setup| (
                <$plugin as $crate::Validate>::configure(&setup)?,
                setup.input
            ),
            {
                fn validate(input: Batch, watermark: i64) -> Result<Vec<Rejection>, PluginError> {
                    STATE.with(|p| <$plugin as $crate::Validate>::validate(p, &input, watermark))
                }
                $crate::__export_state!($plugin, $crate::StatefulValidate);
            }
        );
    };
}

/// Exports an [`Aggregate`](crate::Aggregate) implementation as the `aggregate` world.
#[macro_export]
macro_rules! export_aggregate {
    ($plugin:ty) => {
        $crate::__export_role!(
            $plugin,
            aggregate,
            __export_aggregate_impl,
            |setup| <$plugin as $crate::Aggregate>::configure(&setup)?,
            {
                fn aggregate(input: Batch, watermark: i64) -> Result<AggregateOutput, PluginError> {
                    STATE.with(|p| <$plugin as $crate::Aggregate>::aggregate(p, &input, watermark))
                }
                fn flush() -> Result<Batch, PluginError> {
                    STATE.with(|p| <$plugin as $crate::Aggregate>::flush(p))
                }
                $crate::__export_state!($plugin, $crate::Aggregate);
            }
        );
    };
}

/// Exports a [`MergeAggregate`](crate::MergeAggregate) implementation as the
/// `mergeable-aggregate` world.
#[macro_export]
macro_rules! export_mergeable_aggregate {
    ($plugin:ty) => {
        $crate::__export_role!(
            $plugin,
            mergeable_aggregate,
            __export_mergeable_aggregate_impl,
            |setup| <$plugin as $crate::Aggregate>::configure(&setup)?,
            {
                fn aggregate(input: Batch, watermark: i64) -> Result<AggregateOutput, PluginError> {
                    STATE.with(|p| <$plugin as $crate::Aggregate>::aggregate(p, &input, watermark))
                }
                fn merge(partials: Batch, watermark: i64) -> Result<AggregateOutput, PluginError> {
                    STATE.with(|p| {
                        <$plugin as $crate::MergeAggregate>::merge(p, &partials, watermark)
                    })
                }
                fn flush() -> Result<Batch, PluginError> {
                    STATE.with(|p| <$plugin as $crate::Aggregate>::flush(p))
                }
                $crate::__export_state!($plugin, $crate::Aggregate);
            }
        );
    };
}

/// Exports a [`Detect`](crate::Detect) implementation as the `detect` world.
#[macro_export]
macro_rules! export_detect {
    ($plugin:ty) => {
        $crate::__export_role!(
            $plugin,
            detect,
            __export_detect_impl,
            |setup| <$plugin as $crate::Detect>::configure(&setup)?,
            {
                fn detect(windows: Batch) -> Result<Batch, PluginError> {
                    STATE.with(|p| <$plugin as $crate::Detect>::detect(p, &windows))
                }
                $crate::__export_state!($plugin, $crate::Detect);
            }
        );
    };
}

/// Exports a [`Format`](crate::Format) implementation as the `format` world.
#[macro_export]
macro_rules! export_format {
    ($plugin:ty) => {
        $crate::__export_role!(
            $plugin,
            format,
            __export_format_impl,
            |setup| <$plugin as $crate::Format>::configure(&setup)?,
            {
                fn format(alerts: Batch) -> Result<Batch, PluginError> {
                    STATE.with(|p| <$plugin as $crate::Format>::format(p, &alerts))
                }
            }
        );
    };
}
