//! The topic model: its compact wire form ([`ModelData`], postcard), the decoded [`Model`] and
//! [`Model::classify`].
//!
//! The model is linear: each topic has a bias, each kept term a few (topic, weight) pairs; a
//! page's score for a topic is the bias plus the sum of its term weights × the term's
//! feature value. Top-level topics compete in one softmax, finer topics in another, read
//! within the top-level topics chosen.
//!
//! ```
//! use portrait_core::topics::{BUILTIN_MODEL, Model, PageText};
//! let model = Model::decode(BUILTIN_MODEL).unwrap();
//! let page = PageText { titles: vec!["Premier League football scores and results".into()], ..Default::default() };
//! let topics = model.classify(&page.features());
//! assert_eq!(model.topic(topics.top_level[0].id).unwrap().path(), "/Sports");
//! ```

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::Features;

/// The wire form, one column per field so that brotli finds the patterns; written by
/// `cargo xtask train-topics`, read by [`Model::decode`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelData {
    pub version: u8,
    /// Taxonomy ids, parents before children.
    pub topic_ids: Vec<u16>,
    /// Each topic's parent as its index + 1 in these columns; 0 for a top-level topic.
    pub topic_parents: Vec<u16>,
    pub topic_names: Vec<String>,
    /// A quantised weight `q` means `q × weight_scale`.
    pub weight_scale: f32,
    /// A second or third top-level topic is predicted when its probability is at least this
    /// share of the first's.
    pub second_topic_ratio: f32,
    /// A finer topic is predicted when its probability within its top-level topic is at
    /// least this.
    pub label_threshold: f32,
    /// One quantised bias per topic.
    pub biases: Vec<i8>,
    /// The kept terms' hashes, sorted, as gaps from the previous one.
    pub term_gaps: Vec<u32>,
    /// How many (topic, weight) entries each term has.
    pub term_entries: Vec<u8>,
    /// Entries, term by term: topic (as its place in [`entry_order`]: the top-level topics
    /// first, so that their entries take one byte) and quantised weight.
    pub entry_topics: Vec<u16>,
    pub entry_weights: Vec<i8>,
}

/// The format version [`Model::decode`] reads.
pub const VERSION: u8 = 2;

/// The topic indices (places in the topic columns) in the order entries number them: the
/// top-level topics, then the rest, each in column order.
pub fn entry_order(topic_parents: &[u16]) -> Vec<usize> {
    let top_level = (0..topic_parents.len()).filter(|&i| topic_parents[i] == 0);
    top_level.chain((0..topic_parents.len()).filter(|&i| topic_parents[i] != 0)).collect()
}

impl ModelData {
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_allocvec(self).expect("serialising to memory cannot fail")
    }
}

/// A model that does not decode or does not hold together.
#[derive(Clone, Debug, PartialEq)]
pub enum ModelError {
    /// Not a postcard `ModelData`; the detail says what broke.
    Malformed(String),
    UnsupportedVersion(u8),
    /// Decoded, but a column disagrees with the others: which one and how.
    Inconsistent {
        field: &'static str,
        detail: String,
    },
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModelError::Malformed(detail) => write!(f, "topic model is malformed: {detail}"),
            ModelError::UnsupportedVersion(v) => write!(f, "topic model version {v} is not {VERSION}"),
            ModelError::Inconsistent { field, detail } => write!(f, "topic model field `{field}`: {detail}"),
        }
    }
}

impl std::error::Error for ModelError {}

/// A decoded model, ready to classify.
#[derive(Clone, Debug)]
pub struct Model {
    topics: Vec<Topic>,
    top_level: Vec<usize>,
    second_topic_ratio: f32,
    label_threshold: f32,
    biases: Vec<f32>,
    terms: Vec<u32>,
    /// `entries[offsets[i]..offsets[i + 1]]` belong to `terms[i]`.
    offsets: Vec<usize>,
    entries: Vec<(u16, f32)>,
}

/// One topic of the taxonomy, as the model holds it.
#[derive(Clone, Debug)]
pub struct Topic {
    pub id: u16,
    pub name: String,
    parent: Option<usize>,
    /// The top-level ancestor's index (itself for a top-level topic).
    root: usize,
    path: String,
}

impl Topic {
    /// The taxonomy path, e.g. `/Sports/Soccer`.
    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn is_top_level(&self) -> bool {
        self.parent.is_none()
    }
}

/// A topic (by taxonomy id) with its probability.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scored {
    pub id: u16,
    pub score: f32,
}

/// What a page is about: the predicted top-level topics (best first, at most 3) and every
/// predicted label, top-level and finer, best first.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Classification {
    pub top_level: Vec<Scored>,
    pub labels: Vec<Scored>,
}

/// The deepest topic a model may hold (the taxonomy's go five levels down).
pub const MAX_DEPTH: usize = 8;

/// At most this many top-level topics are predicted for one page.
pub const MAX_TOP_LEVEL: usize = 3;
/// The most topic names a page's hints are read for, all hints together.
pub const MAX_HINT_NAMES: usize = 64;

impl Model {
    pub fn decode(bytes: &[u8]) -> Result<Model, ModelError> {
        let data: ModelData =
            postcard::from_bytes(bytes).map_err(|e| ModelError::Malformed(e.to_string()))?;
        if data.version != VERSION {
            return Err(ModelError::UnsupportedVersion(data.version));
        }
        let count = data.topic_ids.len();
        let inconsistent = |field, detail: String| Err(ModelError::Inconsistent { field, detail });
        // Entries name topics with a `u16`.
        if count > usize::from(u16::MAX) + 1 {
            return inconsistent("topic_ids", format!("{count} topics, more than 65,536"));
        }
        for (field, len) in [
            ("topic_parents", data.topic_parents.len()),
            ("topic_names", data.topic_names.len()),
            ("biases", data.biases.len()),
        ] {
            if len != count {
                return inconsistent(field, format!("{len} values for {count} topics"));
            }
        }
        // Described, not formatted: float formatting would cost the browser's module ~10 KB.
        for (field, value, range, expected) in [
            // Any larger and 127 × scale summed over a page's terms could reach infinity,
            // which the scores' softmax turns into NaN.
            ("weight_scale", data.weight_scale, 0.0..=1.0e6, "a number from 0 to 1,000,000"),
            ("second_topic_ratio", data.second_topic_ratio, 0.0..=1.0, "a number from 0 to 1"),
            ("label_threshold", data.label_threshold, 0.0..=1.0, "a number from 0 to 1"),
        ] {
            if !range.contains(&value) {
                return inconsistent(field, format!("not {expected}"));
            }
        }
        let mut sorted_ids = data.topic_ids.clone();
        sorted_ids.sort_unstable();
        if let Some(pair) = sorted_ids.windows(2).find(|pair| pair[0] == pair[1]) {
            return inconsistent("topic_ids", format!("topic {} is listed twice", pair[0]));
        }
        let mut topics: Vec<Topic> = Vec::with_capacity(count);
        let mut depths: Vec<usize> = Vec::with_capacity(count);
        for (index, ((&id, &parent), name)) in
            data.topic_ids.iter().zip(&data.topic_parents).zip(&data.topic_names).enumerate()
        {
            let parent = match usize::from(parent) {
                0 => None,
                p if p <= index => Some(p - 1),
                p => {
                    return inconsistent(
                        "topic_parents",
                        format!("topic {id} names parent {p}, not an earlier topic"),
                    );
                }
            };
            // Paths copy their parent's, and labels walk their ancestors: bounded by the depth.
            let depth = parent.map_or(1, |p| depths[p] + 1);
            if depth > MAX_DEPTH {
                return inconsistent(
                    "topic_parents",
                    format!("topic {id} is deeper than {MAX_DEPTH} levels"),
                );
            }
            let (root, path) = match parent {
                None => (index, format!("/{name}")),
                Some(p) => (topics[p].root, format!("{}/{name}", topics[p].path)),
            };
            topics.push(Topic { id, name: name.clone(), parent, root, path });
            depths.push(depth);
        }
        // In `u64`: a crafted model's counts must not wrap a 32-bit `usize` (wasm) to a match.
        let entry_count: u64 = data.term_entries.iter().map(|&n| u64::from(n)).sum();
        if data.term_entries.len() != data.term_gaps.len() {
            return inconsistent(
                "term_entries",
                format!("{} counts for {} terms", data.term_entries.len(), data.term_gaps.len()),
            );
        }
        if [data.entry_topics.len(), data.entry_weights.len()].iter().any(|&len| len as u64 != entry_count) {
            return inconsistent("entry_topics", format!("the terms hold {entry_count} entries"));
        }
        if let Some(&bad) = data.entry_topics.iter().find(|&&t| usize::from(t) >= count) {
            return inconsistent("entry_topics", format!("topic index {bad} of {count}"));
        }
        let mut terms = Vec::with_capacity(data.term_gaps.len());
        let mut hash: u32 = 0;
        for (i, &gap) in data.term_gaps.iter().enumerate() {
            if i > 0 && gap == 0 {
                return inconsistent("term_gaps", format!("term {i} repeats its predecessor"));
            }
            hash = match hash.checked_add(gap) {
                Some(next) => next,
                None => return inconsistent("term_gaps", format!("term {i} overflows")),
            };
            terms.push(hash);
        }
        let mut offsets = Vec::with_capacity(terms.len() + 1);
        offsets.push(0);
        for &n in &data.term_entries {
            offsets.push(offsets.last().copied().unwrap_or(0) + usize::from(n));
        }
        let scale = data.weight_scale;
        let order = entry_order(&data.topic_parents);
        Ok(Model {
            top_level: (0..count).filter(|&i| topics[i].parent.is_none()).collect(),
            topics,
            second_topic_ratio: data.second_topic_ratio,
            label_threshold: data.label_threshold,
            biases: data.biases.iter().map(|&b| f32::from(b) * scale).collect(),
            terms,
            offsets,
            entries: data
                .entry_topics
                .iter()
                .zip(&data.entry_weights)
                .map(|(&t, &w)| (order[usize::from(t)] as u16, f32::from(w) * scale))
                .collect(),
        })
    }

    /// The topic with this taxonomy id.
    pub fn topic(&self, id: u16) -> Option<&Topic> {
        self.topics.iter().find(|topic| topic.id == id)
    }

    pub fn topics(&self) -> &[Topic] {
        &self.topics
    }

    /// The topic a site names in a hint (`<meta name="portrait:topics">`,
    /// `data-portrait-topics`): a taxonomy id (`"299"`) or path (`"/Sports"`, any case).
    pub fn resolve_hint(&self, hint: &str) -> Option<u16> {
        let hint = hint.trim();
        match hint.parse::<u16>() {
            Ok(id) => self.topic(id).map(|t| t.id),
            Err(_) => self
                .topics
                .iter()
                .find(|t| t.path.eq_ignore_ascii_case(hint.trim_end_matches('/')))
                .map(|t| t.id),
        }
    }

    /// A page's labels from the site's own hints, which win over the classifier: each named
    /// topic (and its ancestors) an equal share. Empty when no hint names a known topic.
    pub fn hinted(&self, hints: &[String]) -> Vec<Scored> {
        // Bounded: a page may carry many hints (a comment section's `data-portrait-topics`).
        let named: Vec<u16> = hints
            .iter()
            .flat_map(|h| h.split(','))
            .take(MAX_HINT_NAMES)
            .filter_map(|h| self.resolve_hint(h))
            .collect();
        let share = 1.0 / named.len().max(1) as f32;
        let mut labels: Vec<Scored> = Vec::new();
        for id in named {
            let Some(index) = self.topics.iter().position(|t| t.id == id) else { continue };
            for i in self.lineage(index) {
                match labels.iter_mut().find(|s| s.id == self.topics[i].id) {
                    Some(existing) => existing.score += share,
                    None => labels.push(Scored { id: self.topics[i].id, score: share }),
                }
            }
        }
        labels.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.id.cmp(&b.id)));
        labels
    }

    /// Predicts only within the top-level topics of `ids` (each id's top-level topic, and
    /// every topic under it), as if the model knew no others: for scoring against a set
    /// labelled that way (the sources of `dev.jsonl` map to 17 of the 22 top-level topics, so
    /// a prediction of Shopping is wrong there by construction). The other topics' biases
    /// become −∞: no evidence raises them, and [`Model::classify`] never offers them (with
    /// no `ids`, it offers nothing). The error is the first id that is not a topic of this
    /// model.
    pub fn restrict(&mut self, ids: &BTreeSet<u16>) -> Result<(), u16> {
        let mut kept_roots = vec![false; self.topics.len()];
        for &id in ids {
            let index = self.topics.iter().position(|t| t.id == id).ok_or(id)?;
            kept_roots[self.topics[index].root] = true;
        }
        for (bias, topic) in self.biases.iter_mut().zip(&self.topics) {
            if !kept_roots[topic.root] {
                *bias = f32::NEG_INFINITY;
            }
        }
        Ok(())
    }

    /// The topic at `index`, then its parent, up to its top-level topic (indices).
    fn lineage(&self, index: usize) -> impl Iterator<Item = usize> + '_ {
        std::iter::successors(Some(index), |&i| self.topics[i].parent)
    }

    /// Every topic's raw score (bias + term weights), by topic index.
    fn logits(&self, Features(features): &Features) -> Vec<f32> {
        let mut logits = self.biases.clone();
        for &(hash, value) in features {
            if let Ok(i) = self.terms.binary_search(&hash) {
                for &(topic, weight) in &self.entries[self.offsets[i]..self.offsets[i + 1]] {
                    logits[usize::from(topic)] += value * weight;
                }
            }
        }
        logits
    }

    /// Whether the page has a term the model knows. Without one, [`Model::classify`] answers
    /// the prior: the model's best guess for a page it cannot read (the scoring command wants
    /// it), no evidence of an interest ("Loading…", "Sign in" and a page in a language the
    /// model lacks all read as the prior).
    pub fn knows_any(&self, Features(features): &Features) -> bool {
        features.iter().any(|(hash, _)| self.terms.binary_search(hash).is_ok())
    }

    /// The topics a page is evidence of, for an interest profile: its labels, none when the
    /// model knows no word of it ([`Model::knows_any`]).
    pub fn evidence(&self, features: &Features) -> Vec<Scored> {
        match self.knows_any(features) {
            true => self.classify(features).labels,
            false => Vec::new(),
        }
    }

    /// The page's topics. A page with no known term gets the model's prior (its biases).
    pub fn classify(&self, features: &Features) -> Classification {
        let logits = self.logits(features);
        let mut top: Vec<(usize, f32)> = softmax(&self.top_level, &logits);
        top.sort_by(|a, b| b.1.total_cmp(&a.1));
        let best = top.first().map_or(0.0, |&(_, p)| p);
        top.truncate(MAX_TOP_LEVEL);
        top.retain(|&(_, p)| p >= best * self.second_topic_ratio);

        let mut labels: Vec<(usize, f32)> = top.clone();
        for &(root, root_score) in &top {
            let finer: Vec<usize> =
                (0..self.topics.len()).filter(|&i| i != root && self.topics[i].root == root).collect();
            for (index, p) in softmax(&finer, &logits) {
                if p >= self.label_threshold {
                    labels.push((index, root_score * p));
                    // A finer label implies its ancestors; they rank just above it.
                    for a in self.lineage(index).skip(1).take_while(|&a| a != root) {
                        if !labels.iter().any(|&(i, _)| i == a) {
                            labels.push((a, root_score * p));
                        }
                    }
                }
            }
        }
        labels.sort_by(|a, b| {
            b.1.total_cmp(&a.1)
                .then(self.topics[a.0].parent.is_some().cmp(&self.topics[b.0].parent.is_some()))
        });
        let scored = |(index, score): (usize, f32)| Scored { id: self.topics[index].id, score };
        Classification {
            top_level: top.into_iter().map(scored).collect(),
            labels: labels.into_iter().map(scored).collect(),
        }
    }
}

/// Softmax over the topics at `indices`: (index, probability) pairs; a topic whose
/// probability is 0 (scored −∞ by [`Model::restrict`], or too far below the best for an
/// `f32`) is not a candidate. `libm`'s `expf`, not the platform's: the same bits natively
/// (the CLI, the collector, training's threshold choice) as in wasm, where the standard
/// library uses that code anyway.
fn softmax(indices: &[usize], logits: &[f32]) -> Vec<(usize, f32)> {
    let max = indices.iter().map(|&i| logits[i]).fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<(usize, f32)> =
        indices.iter().map(|&i| (i, libm::expf(logits[i] - max))).filter(|&(_, e)| e > 0.0).collect();
    let sum: f32 = exps.iter().map(|&(_, e)| e).sum();
    exps.into_iter().map(|(i, e)| (i, e / sum)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topics::{BUILTIN_MODEL, PageText, term_hash};

    /// Two top-level topics (Sports, Games) and one child of Sports (Soccer); `football`
    /// means Soccer, `chess` means Games.
    fn tiny() -> ModelData {
        let mut terms =
            vec![(term_hash("football"), vec![(0u16, 40i8), (2, 60)]), (term_hash("chess"), vec![(1, 50)])];
        terms.sort_by_key(|t| t.0);
        let mut previous = 0;
        let mut data = ModelData {
            version: VERSION,
            topic_ids: vec![299, 8, 320],
            topic_parents: vec![0, 0, 1],
            topic_names: vec!["Sports".into(), "Games".into(), "Soccer".into()],
            weight_scale: 0.1,
            second_topic_ratio: 0.4,
            label_threshold: 0.5,
            biases: vec![0, 0, -10],
            ..ModelData::default()
        };
        for (hash, entries) in terms {
            data.term_gaps.push(hash - previous);
            previous = hash;
            data.term_entries.push(entries.len() as u8);
            for (topic, weight) in entries {
                data.entry_topics.push(topic);
                data.entry_weights.push(weight);
            }
        }
        data
    }

    fn page(title: &str) -> Features {
        PageText { titles: vec![title.into()], ..PageText::default() }.features()
    }

    #[test]
    fn classifies_with_both_levels_and_paths() {
        let model = Model::decode(&tiny().encode()).unwrap();
        let result = model.classify(&page("Football tonight"));
        assert_eq!(result.top_level.iter().map(|s| s.id).collect::<Vec<_>>(), [299]);
        assert_eq!(result.labels.iter().map(|s| s.id).collect::<Vec<_>>(), [299, 320]);
        assert_eq!(model.topic(320).unwrap().path(), "/Sports/Soccer");

        let both = model.classify(&page("football and chess"));
        assert_eq!(both.top_level.len(), 2, "close second topics are predicted too: {both:?}");
        let unknown = model.classify(&page("zzz"));
        assert_eq!(unknown.top_level.len(), 2, "no evidence: the prior, both topics equal");
        assert!(!model.knows_any(&page("zzz")), "which is no evidence of an interest");
        assert!(model.knows_any(&page("zzz chess")));
        assert!(model.evidence(&page("zzz")).is_empty());
        assert_eq!(model.evidence(&page("zzz chess")), model.classify(&page("zzz chess")).labels);
    }

    #[test]
    fn a_restricted_model_predicts_only_under_the_named_top_level_topics() {
        let mut model = Model::decode(BUILTIN_MODEL).unwrap();
        let page = PageText {
            titles: vec!["Houses for sale and flats to rent in Manchester".into()],
            ..Default::default()
        }
        .features();
        let path = |model: &Model, id| model.topic(id).unwrap().path().to_owned();
        assert_eq!(path(&model, model.classify(&page).top_level[0].id), "/Real Estate");

        let finance = model.topics().iter().find(|t| t.path() == "/Finance").unwrap().id;
        let bed_and_bath =
            model.topics().iter().find(|t| t.path() == "/Home & Garden/Bed & Bath").unwrap().id;
        model.restrict(&BTreeSet::from([finance, bed_and_bath])).unwrap();
        let found = model.classify(&page);
        assert!(!found.top_level.is_empty());
        for label in &found.labels {
            let path = path(&model, label.id);
            assert!(path.starts_with("/Finance") || path.starts_with("/Home & Garden"), "{path}");
        }
        assert_eq!(model.restrict(&BTreeSet::from([finance, 9999])), Err(9999));
    }

    #[test]
    fn a_restricted_topic_is_never_offered_even_at_zero_thresholds() {
        // Thresholds of 0 offer every candidate whose probability is not 0: a topic left out
        // must not be one (its 0 would pass `p >= best × 0`).
        let data = ModelData { second_topic_ratio: 0.0, label_threshold: 0.0, ..tiny() };
        let mut model = Model::decode(&data.encode()).unwrap();
        let everything = model.classify(&page("football chess"));
        assert_eq!(everything.top_level.len(), 2, "{everything:?}");
        model.restrict(&BTreeSet::from([8])).unwrap(); // Games
        let found = model.classify(&page("football chess"));
        let ids: Vec<u16> = found.labels.iter().map(|s| s.id).collect();
        assert_eq!(ids, [8], "{found:?}");
        model.restrict(&BTreeSet::new()).unwrap();
        assert_eq!(model.classify(&page("football chess")), Classification::default());
    }

    #[test]
    fn site_hints_name_topics_by_id_or_path() {
        let model = Model::decode(&tiny().encode()).unwrap();
        assert_eq!(model.resolve_hint(" /sports/SOCCER/ "), Some(320));
        assert_eq!(model.resolve_hint("8"), Some(8));
        assert_eq!(model.resolve_hint("9"), None);
        let labels = model.hinted(&["/Sports/Soccer, nonsense".into(), "8".into()]);
        let ids: Vec<(u16, f32)> = labels.iter().map(|s| (s.id, s.score)).collect();
        assert_eq!(ids, [(8, 0.5), (299, 0.5), (320, 0.5)]);
        assert!(model.hinted(&["nothing".into()]).is_empty());
        // A flood of hints (a comment section's attributes): only the first names are read.
        let flood = ["nonsense,".repeat(MAX_HINT_NAMES) + "8"];
        assert!(model.hinted(&flood).is_empty());
    }

    #[test]
    fn broken_models_are_typed_errors() {
        assert!(matches!(Model::decode(b"\x01\x02"), Err(ModelError::Malformed(_))));
        let mut data = tiny();
        data.version = 9;
        assert_eq!(Model::decode(&data.encode()).unwrap_err(), ModelError::UnsupportedVersion(9));
        type Breakage = fn(&mut ModelData);
        let cases: [(&str, Breakage); 12] = [
            ("topic_ids", |d| d.topic_ids = vec![1; 65_537]),
            ("topic_ids", |d| d.topic_ids[1] = d.topic_ids[0]),
            ("weight_scale", |d| d.weight_scale = f32::NAN),
            ("weight_scale", |d| d.weight_scale = f32::MAX),
            ("second_topic_ratio", |d| d.second_topic_ratio = f32::INFINITY),
            ("label_threshold", |d| d.label_threshold = -0.5),
            ("topic_parents", |d| {
                // A chain: each topic the child of the one before.
                d.topic_ids = (1..=10).collect();
                d.topic_parents = (0..10).collect();
                d.topic_names = vec!["t".into(); 10];
                d.biases = vec![0; 10];
            }),
            ("topic_names", |d| d.topic_names.pop().map(drop).unwrap_or(())),
            ("topic_parents", |d| d.topic_parents[0] = 3),
            ("entry_topics", |d| d.entry_topics[0] = 7),
            ("entry_topics", |d| d.term_entries[0] = 9),
            ("term_gaps", |d| d.term_gaps[1] = 0),
        ];
        for (field, break_it) in cases {
            let mut data = tiny();
            break_it(&mut data);
            match Model::decode(&data.encode()) {
                Err(ModelError::Inconsistent { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: {other:?}"),
            }
        }
    }

    /// Pages on the topics the labelled data lacks, and in Chinese and Japanese: the lexicon's
    /// evidence must survive training (its L1 penalty). (title, a top-level topic it must predict)
    const BUILTIN_CASES: &[(&str, u16)] = &[
        ("Used cars for sale: compare prices from dealers", 57),
        ("Houses for sale and flats to rent near you", 272),
        ("Shop the sale: discount codes, free delivery on orders", 289),
        ("Compare broadband, mobile phone and SIM only deals", 215),
        ("Join the forum: community discussion boards and threads", 250),
        ("Premier League football scores and results", 299),
        ("二手车 汽车报价", 57),
        ("上海房地产 二手房 出售", 272),
        ("日本のサッカー リーグ 試合結果", 299),
    ];

    #[test]
    fn the_builtin_model_knows_topics_without_training_rows_and_cjk_pages() {
        let model = Model::decode(BUILTIN_MODEL).unwrap();
        let missed: Vec<String> = BUILTIN_CASES
            .iter()
            .map(|&(title, expected)| (title, expected, model.classify(&page(title))))
            .filter(|(_, expected, found)| !found.top_level.iter().any(|s| s.id == *expected))
            .map(|(title, expected, found)| {
                format!("{title}: expected {expected}, got {:?}", found.top_level)
            })
            .collect();
        assert!(missed.is_empty(), "{missed:#?}");
    }

    #[test]
    fn entries_number_the_top_level_topics_first() {
        // Sports, Soccer (under Sports), Games, Chess (under Games).
        assert_eq!(entry_order(&[0, 1, 0, 3]), [0, 2, 1, 3]);
        let mut data = ModelData {
            topic_ids: vec![299, 320, 8, 9],
            topic_parents: vec![0, 1, 0, 3],
            topic_names: ["Sports", "Soccer", "Games", "Chess"].map(String::from).to_vec(),
            biases: vec![0; 4],
            ..tiny()
        };
        (data.term_gaps, data.term_entries) = (vec![term_hash("chess")], vec![1]);
        (data.entry_topics, data.entry_weights) = (vec![1], vec![50]);
        let model = Model::decode(&data.encode()).unwrap();
        assert_eq!(
            model.classify(&page("chess")).top_level[0].id,
            8,
            "entry 1 is Games, the second top-level topic"
        );
    }

    #[test]
    fn the_builtin_model_decodes_and_covers_the_taxonomy() {
        let model = Model::decode(BUILTIN_MODEL).unwrap();
        assert_eq!(model.topics().len(), 469);
        assert_eq!(model.topics().iter().filter(|t| t.is_top_level()).count(), 22);
    }
}
