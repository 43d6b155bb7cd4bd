//! Portrait's collector: a Cloudflare Worker with one Durable Object per profile, turning HTTP,
//! storage and alarms into calls on `portrait-core`.
//!
//! A skeleton until the collector issue fills it; it exists so the workspace has its final shape.
