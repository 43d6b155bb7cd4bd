//! Portrait's browser SDK: turns the DOM, storage and network into calls on `portrait-core`.
//!
//! A skeleton until the SDK issue fills it; it exists so the workspace has its final shape.
