//! `core` micro-benchmarks: decoding batches, applying events, merging profiles, tags and
//! audiences.
//! Run: `cargo bench -p portrait-core --bench core`.

#[path = "../tests/common/scenarios.rs"]
mod scenarios;

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use portrait_core::audience::Rule;
use portrait_core::profile::Profile;
use portrait_core::tags::{self, ProfileFacts, TagSettings};
use portrait_core::{beacon, segment};

fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode");
    for count in [20, 500] {
        let (sent_at, events) = scenarios::button_clicks(count);
        let body =
            beacon::encode(&beacon::Batch { sent_at: Some(sent_at), dropped: 0, events: events.clone() });
        let json = segment::encode_batch(&events);
        group.throughput(Throughput::Elements(count as u64));
        group.bench_function(format!("beacon, {count} events"), |b| {
            b.iter(|| beacon::decode(black_box(&body)).unwrap())
        });
        group.bench_function(format!("segment json, {count} events"), |b| {
            b.iter(|| segment::decode_batch(black_box(&json), 0).unwrap())
        });
    }
    group.finish();
}

fn profiles(c: &mut Criterion) {
    let events = scenarios::varied_visitor(400);
    let build = |received: &[portrait_core::enrich::Received]| {
        let mut profile = Profile::default();
        received.iter().for_each(|r| profile.apply(r));
        profile
    };
    let warm = build(&events[..199]);
    c.bench_function("apply one event to a 200-event profile", |b| {
        b.iter_batched(|| warm.clone(), |mut p| p.apply(black_box(&events[199])), BatchSize::SmallInput)
    });
    let (left, right) = (build(&events[..200]), build(&events[200..]));
    c.bench_function("merge two 200-event profiles", |b| {
        b.iter_batched(|| left.clone(), |mut p| p.merge("right", black_box(&right)), BatchSize::SmallInput)
    });
    c.bench_function("encode + decode a 200-event profile state", |b| {
        b.iter(|| postcard::from_bytes::<Profile>(&postcard::to_allocvec(black_box(&warm)).unwrap()).unwrap())
    });
}

/// What a ProfileObject does with a one-person beacon of 20 events, step by step.
fn object_pipeline(c: &mut Criterion) {
    use portrait_core::Timestamp;
    use portrait_core::enrich::{Geo, LastDevice, enrich_all};
    let (sent_at, events) = scenarios::button_clicks(20);
    let body = beacon::encode(&beacon::Batch { sent_at: Some(sent_at), dropped: 0, events });
    let received_at = Timestamp(sent_at.0 + 50);
    let geo = Geo { country: Some("DE".into()), city: Some("Berlin".into()), ..Geo::default() };
    let decoded = beacon::decode(&body).unwrap();
    let received: Vec<_> = enrich_all(decoded.events.clone(), received_at, &geo, &mut LastDevice::default())
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let mut group = c.benchmark_group("object pipeline, 20 events");
    group.bench_function("decode + validate", |b| b.iter(|| beacon::decode(black_box(&body)).unwrap()));
    group.bench_function("enrich (one user agent)", |b| {
        b.iter_batched(
            || decoded.events.clone(),
            |events| enrich_all(events, received_at, &geo, &mut LastDevice::default()),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("apply", |b| {
        b.iter_batched(
            Profile::default,
            |mut p| received.iter().for_each(|r| p.apply(r)),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("encode the batch for storage", |b| {
        b.iter(|| postcard::to_allocvec(black_box(&received)).unwrap())
    });
    group.finish();
}

/// What a ProfileObject does after a batch when its workspace has audiences: all tags of a
/// 200-event profile at one time, then 50 audience rules over them.
fn tags_and_audiences(c: &mut Criterion) {
    let events = scenarios::varied_visitor(200);
    let mut profile = Profile::default();
    events.iter().for_each(|r| profile.apply(r));
    let settings = TagSettings::default();
    let now = profile.last_seen.unwrap();
    let rules: Vec<Rule> = (0..50)
        .map(|i| {
            let text = match i % 5 {
                0 => format!("lead_score >= {} and intent_stage == \"decision\"", i),
                1 => format!("engagement_score > {i} or active_7d"),
                2 => {
                    format!("interest(\"/Computers & Electronics\") > 0.{i} and country in [\"DE\", \"FR\"]")
                }
                3 => {
                    format!("not lifecycle in [\"customer\", \"churned\"] and visits_per_week >= {}", i / 10)
                }
                _ => format!("trait(\"plan\") == \"pro\" and page_views > {i}"),
            };
            Rule::parse(&text).unwrap()
        })
        .collect();
    let mut group = c.benchmark_group("tags");
    group.bench_function("all tags of a 200-event profile", |b| {
        b.iter(|| tags::tags(black_box(&profile), &settings, now))
    });
    let computed = tags::tags(&profile, &settings, now);
    group.bench_function("50 audience rules", |b| {
        let facts = ProfileFacts { tags: &computed, profile: &profile, now };
        b.iter(|| rules.iter().filter(|r| r.eval(black_box(&facts))).count())
    });
    group.finish();
}

criterion_group!(benches, decode, profiles, object_pipeline, tags_and_audiences);
criterion_main!(benches);
