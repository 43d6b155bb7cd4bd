//! `cargo xtask train-topics`: trains the topic model and writes `core/topics/model.bin`.
//!
//! Sources: the Topics v2 taxonomy and the labelled pages in `../shared/data/topics/`
//! (`topics_taxonomy_v2.tsv`, `dev.jsonl`), and the hand-written `core/topics/lexicon.tsv`.
//! Every topic becomes a pseudo-document (its name words and its lexicon keywords); every
//! labelled page a document. Two softmax regressions are trained on the features
//! `core::topics` computes (so training sees exactly what the browser sees): one over the 22
//! top-level topics, one over the finer topics, by SGD with an L1 penalty that leaves most
//! weights at exactly zero; the rest are quantised to `i8`. The top-level prior (the biases)
//! is learnt from the labelled pages only.
//!
//! First a 5-fold cross-validation on `dev.jsonl` (per source; the quantised model, decoded
//! and run by `core`), which also picks the two decision thresholds; then the final model on
//! every row. Deterministic: the same sources give the same bytes.
//!
//! It also scores the fold models on `core/topics/probe.jsonl`, everyday pages written for
//! that and never trained on: how far the lexicon carries beyond the labelled pages' words.
//!
//! `--cv-only` reports without writing; `--check` trains and fails unless the result is the
//! committed `core/topics/model.bin` byte for byte (`cargo xtask test` runs it).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use portrait_core::topics::model::{Classification, Model, ModelData, VERSION, entry_order};
use portrait_core::topics::{Features, PageText};

/// Training settings, chosen by cross-validation (see BENCHMARKS.md).
const EPOCHS: usize = 40;
const LEARNING_RATE: f64 = 0.5;
const LEARNING_RATE_DECAY: f64 = 0.2;
const L2: f64 = 1e-5;
/// The L1 penalty per example: it zeroes every weight whose evidence does not pay for it,
/// which is what keeps the model under 16 KB brotli. The finer topics pay more (their labels
/// are fewer and noisier, and the top-level topics are what a page is judged by).
const L1: f64 = 5e-5;
const FINER_L1_FACTOR: f64 = 3.0;
/// A top-level lexicon keyword's weight for its own topic pays this share of the penalty.
/// Each keyword is one or two pseudo-documents: at the full penalty most would be zeroed,
/// and for Chinese and Japanese pages and the topics without labelled pages the lexicon is
/// the only evidence (reviewed, so worth keeping).
const LEXICON_L1_FACTOR: f64 = 0.1;
/// How much one lexicon phrase counts against one labelled page.
const LEXICON_WEIGHT: f64 = 0.3;
const TOP_LEVEL_LEXICON_WEIGHT: f64 = 1.0;
const FOLDS: u64 = 5;

/// Where the taxonomy and the labelled pages are, from the project root: beside the project,
/// not in it (see that folder's README).
pub const DATA_DIR: &str = "../shared/data/topics";

pub fn train(root: &Path, args: &[String]) -> Result<(), String> {
    let data_dir = root.join(DATA_DIR);
    let taxonomy = Taxonomy::read(&data_dir.join("topics_taxonomy_v2.tsv"))?;
    let lexicon = read_lexicon(&root.join("core/topics/lexicon.tsv"), &taxonomy)?;
    let rows = read_rows(&data_dir.join("dev.jsonl"), &taxonomy)?;
    if rows.is_empty() {
        return Err("dev.jsonl has no labelled pages".to_owned());
    }
    let probe = read_rows(&root.join("core/topics/probe.jsonl"), &taxonomy)?;
    let pseudo: Vec<Example> = taxonomy.pseudo_documents(&lexicon);
    println!("{} topics, {} lexicon lines, {} labelled pages", taxonomy.ids.len(), lexicon.len(), rows.len());

    let mut fold_models = Vec::new();
    for fold in 0..FOLDS {
        let training: Vec<&Example> =
            rows.iter().filter(|r| r.fold != fold).map(|r| &r.example).chain(&pseudo).collect();
        fold_models.push((fold, Weights::fit(&taxonomy, &training).quantise(&taxonomy)));
    }
    let grid = threshold_grid(&rows, &fold_models);
    let chosen = best_thresholds(&rows, &grid, &|_| true);
    println!(
        "thresholds: second topic ≥ {} × first; finer label ≥ {}",
        chosen.second_topic_ratio, chosen.label_threshold
    );
    let fold_bytes = fold_models[0].1.encode();
    println!(
        "a fold's model: {} terms, {} weights, {} bytes, {} brotli",
        fold_models[0].1.term_gaps.len(),
        fold_models[0].1.entry_weights.len(),
        fold_bytes.len(),
        brotli_size(&fold_bytes)?
    );
    let report = Scores::of(&rows, &chosen.predictions);
    let restricted_predictions =
        fold_predictions(&rows, &fold_models, chosen.second_topic_ratio, chosen.label_threshold, true);
    let restricted = Scores::of(&rows, &restricted_predictions);
    let nested = Scores::of(&rows, &nested_predictions(&rows, &fold_models, &grid, false));
    let nested_restricted = Scores::of(&rows, &nested_predictions(&rows, &fold_models, &grid, true));
    println!(
        "{}",
        score_table(&[
            ("", &report),
            (", `--labels-of`", &restricted),
            (", thresholds chosen without the fold", &nested),
            (", `--labels-of`, thresholds chosen without the fold", &nested_restricted),
        ])
    );
    println!("{}", report.all.per_topic(&taxonomy));
    println!("{}", probe_table(&probe, &fold_models, &taxonomy));

    if args.iter().any(|a| a == "--cv-only") {
        return Ok(());
    }
    let all: Vec<&Example> = rows.iter().map(|r| &r.example).chain(&pseudo).collect();
    let mut data = Weights::fit(&taxonomy, &all).quantise(&taxonomy);
    (data.second_topic_ratio, data.label_threshold) = (chosen.second_topic_ratio, chosen.label_threshold);
    let bytes = data.encode();
    let out = root.join("core/topics/model.bin");
    if args.iter().any(|a| a == "--check") {
        let committed = std::fs::read(&out).map_err(|e| format!("cannot read {}: {e}", out.display()))?;
        if committed != bytes {
            return Err(format!(
                "{} ({} bytes) is not what its sources make ({} bytes): run `cargo xtask train-topics`",
                out.display(),
                committed.len(),
                bytes.len()
            ));
        }
        println!("{} is what its sources make ({} bytes)", out.display(), bytes.len());
        return Ok(());
    }
    std::fs::write(&out, &bytes).map_err(|e| format!("cannot write {}: {e}", out.display()))?;
    println!("wrote {} ({} bytes, {} brotli)", out.display(), bytes.len(), brotli_size(&bytes)?);
    Ok(())
}

/// The size of `bytes` compressed with brotli at quality 11, as a server would send them
/// (by Node's zlib, which every machine running the tests has).
pub fn brotli_size(bytes: &[u8]) -> Result<usize, String> {
    let script = "const z=require('zlib');const c=[];process.stdin.on('data',d=>c.push(d)).on('end',()=>\
        console.log(z.brotliCompressSync(Buffer.concat(c),{params:{[z.constants.BROTLI_PARAM_QUALITY]:11}}).length))";
    let mut child = std::process::Command::new("node")
        .args(["-e", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run node: {e}"))?;
    std::io::Write::write_all(&mut child.stdin.take().expect("piped"), bytes).map_err(|e| e.to_string())?;
    let output = child.wait_with_output().map_err(|e| e.to_string())?;
    String::from_utf8_lossy(&output.stdout).trim().parse().map_err(|_| "node printed no size".to_owned())
}

/// The taxonomy in file order (parents before children).
struct Taxonomy {
    ids: Vec<u16>,
    parents: Vec<Option<usize>>,
    names: Vec<String>,
    index: HashMap<u16, usize>,
}

impl Taxonomy {
    fn read(path: &Path) -> Result<Taxonomy, String> {
        let text = read_text(path)?;
        let mut taxonomy =
            Taxonomy { ids: Vec::new(), parents: Vec::new(), names: Vec::new(), index: HashMap::new() };
        for (n, line) in text.lines().enumerate().skip(1) {
            let fields: Vec<&str> = line.split('\t').collect();
            let [id, parent, name, ..] = fields[..] else {
                return Err(format!("{}:{}: expected id, parent, name", path.display(), n + 1));
            };
            let id: u16 = id.parse().map_err(|_| format!("{}:{}: bad id {id:?}", path.display(), n + 1))?;
            let parent = match parent {
                "" => None,
                p => Some(p.parse().ok().and_then(|p: u16| taxonomy.index.get(&p).copied()).ok_or_else(
                    || format!("{}:{}: parent {p} is not an earlier topic", path.display(), n + 1),
                )?),
            };
            taxonomy.index.insert(id, taxonomy.ids.len());
            taxonomy.ids.push(id);
            taxonomy.parents.push(parent);
            taxonomy.names.push(name.to_owned());
        }
        Ok(taxonomy)
    }

    fn root(&self, mut index: usize) -> usize {
        while let Some(parent) = self.parents[index] {
            index = parent;
        }
        index
    }

    /// The name of the topic with taxonomy id `id` (`?` for an id the taxonomy lacks).
    fn name(&self, id: u16) -> &str {
        self.index.get(&id).map_or("?", |&i| self.names[i].as_str())
    }

    fn top_level(&self) -> Vec<usize> {
        (0..self.ids.len()).filter(|&i| self.parents[i].is_none()).collect()
    }

    fn finer(&self) -> Vec<usize> {
        (0..self.ids.len()).filter(|&i| self.parents[i].is_some()).collect()
    }

    /// Pseudo-documents: each topic's name, and each of its lexicon keywords on its own (a
    /// one-phrase page), so that every keyword is full evidence for its topic.
    fn pseudo_documents(&self, lexicon: &BTreeMap<usize, Vec<String>>) -> Vec<Example> {
        let mut examples = Vec::new();
        for index in 0..self.ids.len() {
            let phrases =
                std::iter::once(&self.names[index]).chain(lexicon.get(&index).into_iter().flatten());
            for phrase in phrases {
                let page = PageText { titles: vec![phrase.clone()], ..PageText::default() };
                let top_level = self.parents[index].is_none();
                let weight = if top_level { TOP_LEVEL_LEXICON_WEIGHT } else { LEXICON_WEIGHT };
                let mut example = Example::new(self, page.features(), &[index], weight);
                example.from_lexicon = true;
                examples.push(example);
            }
        }
        examples
    }
}

/// One training document: features, the top-level and finer topics it belongs to, a weight.
#[derive(Clone)]
struct Example {
    features: Features,
    top: Vec<usize>,
    finer: Vec<usize>,
    weight: f64,
    /// A pseudo-document: evidence for its terms, not for how common its topic is. It
    /// leaves the top-level biases (the prior) to the labelled pages; otherwise the topics
    /// with many keywords and no pages (Shopping, Real Estate…) would be guessed for pages
    /// that say nothing.
    from_lexicon: bool,
}

impl Example {
    fn new(taxonomy: &Taxonomy, features: Features, labels: &[usize], weight: f64) -> Example {
        let mut top: Vec<usize> = labels.iter().map(|&l| taxonomy.root(l)).collect();
        top.sort_unstable();
        top.dedup();
        // The deepest labels only: a row labelled /Sports and /Sports/Olympics is an
        // Olympics example for the finer model.
        let finer = labels
            .iter()
            .copied()
            .filter(|&l| {
                taxonomy.parents[l].is_some()
                    && !labels.iter().any(|&other| taxonomy.parents[other] == Some(l))
            })
            .collect();
        Example { features, top, finer, weight, from_lexicon: false }
    }
}

struct Row {
    title: String,
    source: String,
    fold: u64,
    top_level: Vec<u16>,
    labels: Vec<u16>,
    example: Example,
}

fn read_rows(path: &Path, taxonomy: &Taxonomy) -> Result<Vec<Row>, String> {
    let text = read_text(path)?;
    text.lines()
        .enumerate()
        .map(|(n, line)| {
            let at = |what: &str| format!("{}:{}: {what}", path.display(), n + 1);
            let json: serde_json::Value = serde_json::from_str(line).map_err(|e| at(&e.to_string()))?;
            if let Some(problem) = PageText::json_problem(&json) {
                return Err(at(&problem));
            }
            let page = PageText::from_json(&json);
            let ids = |field: &str| -> Vec<u16> {
                json[field]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|v| v.as_u64())
                    .map(|v| v as u16)
                    .collect()
            };
            let labels: Vec<usize> =
                ids("label_ids").iter().filter_map(|id| taxonomy.index.get(id).copied()).collect();
            if labels.is_empty() {
                return Err(at("no known label_ids"));
            }
            let id = json["id"].as_str().unwrap_or_default();
            Ok(Row {
                fold: portrait_core::hash::fnv1a(id.as_bytes()) % FOLDS,
                title: json["title"].as_str().unwrap_or_default().to_owned(),
                source: json["source"].as_str().unwrap_or("?").to_owned(),
                top_level: ids("top_level_ids"),
                labels: ids("label_ids"),
                example: Example::new(taxonomy, page.features(), &labels, 1.0),
            })
        })
        .collect()
}

fn read_lexicon(path: &Path, taxonomy: &Taxonomy) -> Result<BTreeMap<usize, Vec<String>>, String> {
    let text = read_text(path)?;
    let mut lexicon = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let at = |what: String| format!("{}:{}: {what}", path.display(), n + 1);
        let [id, topic_path, keywords] = line.split('\t').collect::<Vec<_>>()[..] else {
            return Err(at("expected id, path, keywords".into()));
        };
        let index = id
            .parse()
            .ok()
            .and_then(|id: u16| taxonomy.index.get(&id).copied())
            .ok_or_else(|| at(format!("unknown topic {id}")))?;
        if !topic_path.ends_with(&taxonomy.names[index]) {
            return Err(at(format!("{topic_path} is not topic {id}")));
        }
        lexicon.insert(
            index,
            keywords.split(',').map(|k| k.trim().to_owned()).filter(|k| !k.is_empty()).collect(),
        );
    }
    Ok(lexicon)
}

fn read_text(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// Float weights of both regressions, by term hash.
struct Weights {
    /// Term → weight per topic index (dense over all topics: a few thousand terms × 469).
    terms: BTreeMap<u32, Vec<f64>>,
    biases: Vec<f64>,
    /// L1 by cumulative penalty (Tsuruoka, Tsujii and Ananiadou 2009): the penalty a weight
    /// could have had so far (before its softmax's factor), and per weight what it has had.
    penalty_total: f64,
    penalty_applied: BTreeMap<u32, Vec<f64>>,
    /// The top-level topics each term is a lexicon keyword of: those weights pay only
    /// [`LEXICON_L1_FACTOR`] of the penalty.
    lexicon_topics: BTreeMap<u32, Vec<usize>>,
}

/// One of the two softmaxes: the topics that compete in it, its share of the L1 penalty, and
/// whether the lexicon's pseudo-documents may move its biases.
struct Softmax {
    topics: Vec<usize>,
    l1_factor: f64,
    prior_from_lexicon: bool,
}

impl Weights {
    /// Trains both softmaxes by SGD with L1: most weights end at exactly zero, and those are
    /// not shipped.
    fn fit(taxonomy: &Taxonomy, examples: &[&Example]) -> Weights {
        let topics = taxonomy.ids.len();
        let mut weights = Weights {
            terms: BTreeMap::new(),
            biases: vec![0.0; topics],
            penalty_total: 0.0,
            penalty_applied: BTreeMap::new(),
            lexicon_topics: BTreeMap::new(),
        };
        for example in examples {
            for &(hash, _) in &example.features.0 {
                weights.terms.entry(hash).or_insert_with(|| vec![0.0; topics]);
                weights.penalty_applied.entry(hash).or_insert_with(|| vec![0.0; topics]);
                if example.from_lexicon && example.finer.is_empty() {
                    weights.lexicon_topics.entry(hash).or_default().extend(&example.top);
                }
            }
        }
        let top_level = Softmax { topics: taxonomy.top_level(), l1_factor: 1.0, prior_from_lexicon: false };
        let finer =
            Softmax { topics: taxonomy.finer(), l1_factor: FINER_L1_FACTOR, prior_from_lexicon: true };
        let mut order: Vec<usize> = (0..examples.len()).collect();
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        for epoch in 0..EPOCHS {
            shuffle(&mut order, &mut seed);
            let rate = LEARNING_RATE / (1.0 + epoch as f64 * LEARNING_RATE_DECAY);
            for &i in &order {
                let example = examples[i];
                weights.penalty_total += rate * L1;
                weights.step(example, &top_level, &example.top, rate);
                if !example.finer.is_empty() {
                    weights.step(example, &finer, &example.finer, rate);
                }
            }
        }
        let mut pages: BTreeMap<usize, usize> = BTreeMap::new();
        for example in examples.iter().filter(|e| !e.from_lexicon) {
            for &c in &example.top {
                *pages.entry(c).or_default() += 1;
            }
        }
        if let Some(floor) = prior_without_pages(&weights.biases, &pages) {
            for &c in top_level.topics.iter().filter(|c| !pages.contains_key(c)) {
                weights.biases[c] = weights.biases[c].max(floor);
            }
        }
        weights
    }

    /// One SGD step of a softmax towards an even split over `targets`, then the L1 penalty
    /// the touched weights are owed (clipped at zero, never across it).
    fn step(&mut self, example: &Example, softmax: &Softmax, targets: &[usize], rate: f64) {
        let classes = &softmax.topics;
        let mut logits: Vec<f64> = classes.iter().map(|&c| self.biases[c]).collect();
        for &(hash, value) in &example.features.0 {
            let row = &self.terms[&hash];
            for (logit, &c) in logits.iter_mut().zip(classes) {
                *logit += f64::from(value) * row[c];
            }
        }
        let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        // `libm`, not the platform's `exp`: the same model bytes on every machine (CI checks).
        let exps: Vec<f64> = logits.iter().map(|z| libm::exp(z - max)).collect();
        let sum: f64 = exps.iter().sum();
        let share = 1.0 / targets.len() as f64;
        let gradients: Vec<f64> = classes
            .iter()
            .zip(&exps)
            .map(|(c, e)| example.weight * (e / sum - if targets.contains(c) { share } else { 0.0 }))
            .collect();
        for &(hash, value) in &example.features.0 {
            let total = self.penalty_total * softmax.l1_factor;
            let lexicon_topics = self.lexicon_topics.get(&hash).map_or(&[][..], Vec::as_slice);
            let row = self.terms.get_mut(&hash).expect("every term has a row");
            let applied = self.penalty_applied.get_mut(&hash).expect("every term has a row");
            for (&c, g) in classes.iter().zip(&gradients) {
                let w = row[c] - rate * (g * f64::from(value) + L2 * row[c]);
                let total = if lexicon_topics.contains(&c) { total * LEXICON_L1_FACTOR } else { total };
                row[c] = if w > 0.0 {
                    (w - (total + applied[c])).max(0.0)
                } else if w < 0.0 {
                    (w + (total - applied[c])).min(0.0)
                } else {
                    w
                };
                applied[c] += row[c] - w;
            }
        }
        if softmax.prior_from_lexicon || !example.from_lexicon {
            for (&c, g) in classes.iter().zip(&gradients) {
                self.biases[c] -= rate * g;
            }
        }
    }

    /// Quantise: the shipped form (thresholds are set by the caller).
    fn quantise(&self, taxonomy: &Taxonomy) -> ModelData {
        let kept: Vec<(u32, Vec<(usize, f64)>)> = self
            .terms
            .iter()
            .map(|(&hash, row)| {
                (
                    hash,
                    row.iter()
                        .enumerate()
                        .filter(|(_, w)| **w != 0.0)
                        .map(|(c, &w)| (c, w))
                        .collect::<Vec<_>>(),
                )
            })
            .filter(|(_, entries)| !entries.is_empty())
            .collect();
        let largest = kept
            .iter()
            .flat_map(|(_, e)| e.iter().map(|(_, w)| w.abs()))
            .chain(self.biases.iter().map(|b| b.abs()))
            .fold(0.0, f64::max);
        let scale = largest / 127.0;
        let quantised = |w: f64| (w / scale).round().clamp(-127.0, 127.0) as i8;
        let mut data = ModelData {
            version: VERSION,
            topic_ids: taxonomy.ids.clone(),
            topic_parents: taxonomy.parents.iter().map(|p| p.map_or(0, |p| p as u16 + 1)).collect(),
            topic_names: taxonomy.names.clone(),
            weight_scale: scale as f32,
            biases: self.biases.iter().map(|&b| quantised(b)).collect(),
            ..ModelData::default()
        };
        let mut place = vec![0; taxonomy.ids.len()];
        for (n, index) in entry_order(&data.topic_parents).into_iter().enumerate() {
            place[index] = n as u16;
        }
        let mut previous = 0;
        for (hash, entries) in kept {
            let entries: Vec<(usize, i8)> =
                entries.into_iter().map(|(c, w)| (c, quantised(w))).filter(|&(_, q)| q != 0).collect();
            if entries.is_empty() {
                continue;
            }
            data.term_gaps.push(hash - previous);
            previous = hash;
            data.term_entries.push(entries.len() as u8);
            for (c, q) in entries {
                data.entry_topics.push(place[c]);
                data.entry_weights.push(q);
            }
        }
        data
    }
}

/// The prior (bias) of a top-level topic without labelled pages, from `pages` (topic index →
/// labelled pages, for the topics with any). Such a topic learnt only "never". Seen on none
/// of the pages, it is rarer than 3 in their number (the rule of three, at 95 %): it gets the
/// prior of the rarest topic with pages (the first of equals), scaled from that topic's k
/// pages down to 3 (never up), so that its lexicon wins on a page about it and not on one
/// passing word. `None` when no topic has pages.
fn prior_without_pages(biases: &[f64], pages: &BTreeMap<usize, usize>) -> Option<f64> {
    let (&rarest, &rarest_pages) = pages.iter().min_by_key(|&(_, n)| *n)?;
    Some(biases[rarest] + libm::log(3.0 / rarest_pages as f64).min(0.0))
}

/// Fisher–Yates with a 64-bit LCG: deterministic across runs and machines.
fn shuffle(order: &mut [usize], seed: &mut u64) {
    for i in (1..order.len()).rev() {
        *seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        order.swap(i, (*seed >> 33) as usize % (i + 1));
    }
}

/// A pair of decision thresholds and the cross-validated predictions they give.
struct Thresholds {
    second_topic_ratio: f32,
    label_threshold: f32,
    predictions: Vec<Option<Classification>>,
}

/// Every fold model's predictions for its held-out rows, for each pair of thresholds tried.
fn threshold_grid(rows: &[Row], folds: &[(u64, ModelData)]) -> Vec<Thresholds> {
    let mut grid = Vec::new();
    for second_topic_ratio in [0.3, 0.4, 0.5, 0.6, 0.7, 1.0] {
        for label_threshold in [0.2, 0.3, 0.4, 0.5] {
            let predictions = fold_predictions(rows, folds, second_topic_ratio, label_threshold, false);
            grid.push(Thresholds { second_topic_ratio, label_threshold, predictions });
        }
    }
    grid
}

/// The pair of thresholds with the best top-level macro-F1 (ties: label F1, then the first
/// tried) on the rows `counted` keeps.
fn best_thresholds<'g>(
    rows: &[Row],
    grid: &'g [Thresholds],
    counted: &dyn Fn(&Row) -> bool,
) -> &'g Thresholds {
    let mut best: Option<((f64, f64), &Thresholds)> = None;
    for point in grid {
        let predictions: Vec<Option<Classification>> =
            rows.iter().zip(&point.predictions).map(|(row, p)| p.clone().filter(|_| counted(row))).collect();
        let scores = Scores::of(rows, &predictions);
        let key = (scores.all.macro_f1, scores.all.label_f1);
        if best.is_none_or(|(best_key, _)| key > best_key) {
            best = Some((key, point));
        }
    }
    best.expect("the grid is not empty").1
}

/// Each fold's rows predicted with the thresholds the other folds' rows choose: scores with
/// no choice made on the rows they count (the shipped thresholds are chosen on all rows).
fn nested_predictions(
    rows: &[Row],
    folds: &[(u64, ModelData)],
    grid: &[Thresholds],
    restricted: bool,
) -> Vec<Option<Classification>> {
    let mut predictions = vec![None; rows.len()];
    for (i, (fold, _)) in folds.iter().enumerate() {
        let chosen = best_thresholds(rows, grid, &|row| row.fold != *fold);
        // The grid holds the unrestricted predictions already.
        let own = match restricted {
            true => {
                fold_predictions(rows, &folds[i..=i], chosen.second_topic_ratio, chosen.label_threshold, true)
            }
            false => chosen.predictions.clone(),
        };
        for ((slot, prediction), row) in predictions.iter_mut().zip(own).zip(rows) {
            if row.fold == *fold {
                *slot = prediction;
            }
        }
    }
    predictions
}

/// Each fold model's predictions for its held-out rows, with these thresholds. `restricted`:
/// each model restricted to the topics its training rows are labelled with
/// ([`Model::restrict`]), as `portrait topics --labels-of` scores a set labelled like
/// `dev.jsonl`.
fn fold_predictions(
    rows: &[Row],
    folds: &[(u64, ModelData)],
    second_topic_ratio: f32,
    label_threshold: f32,
    restricted: bool,
) -> Vec<Option<Classification>> {
    let mut predictions = vec![None; rows.len()];
    for (fold, data) in folds {
        let data = ModelData { second_topic_ratio, label_threshold, ..data.clone() };
        let mut model = Model::decode(&data.encode()).expect("own model decodes");
        if restricted {
            let labels: BTreeSet<u16> =
                rows.iter().filter(|r| r.fold != *fold).flat_map(|r| r.labels.iter().copied()).collect();
            model.restrict(&labels).expect("the rows' labels are the taxonomy's topics");
        }
        for (i, row) in rows.iter().enumerate().filter(|(_, r)| r.fold == *fold) {
            predictions[i] = Some(model.classify(&row.example.features));
        }
    }
    predictions
}

/// Everyday pages written for this check, not drawn from `dev.jsonl`: how the fold models
/// read vocabulary the labelled pages may lack (the lexicon's job). Each page's row says how
/// many of the models put one of its topics first.
fn probe_table(probe: &[Row], folds: &[(u64, ModelData)], taxonomy: &Taxonomy) -> String {
    let models: Vec<Model> =
        folds.iter().map(|(_, data)| Model::decode(&data.encode()).expect("own model decodes")).collect();
    let mut table = String::from(
        "| probe page (`core/topics/probe.jsonl`) | topics | fold models with one first |\n|---|---|---:|\n",
    );
    let mut hits = 0;
    for row in probe {
        let first = |model: &Model| model.classify(&row.example.features).top_level.first().map(|s| s.id);
        let found = models.iter().filter(|m| first(m).is_some_and(|id| row.top_level.contains(&id))).count();
        hits += found;
        let names: Vec<&str> = row.top_level.iter().map(|&id| taxonomy.name(id)).collect();
        let title = row.title.replace('|', "\\|");
        table += &format!("| {title} | {} | {found} of {} |\n", names.join(" or "), models.len());
    }
    table += &format!(
        "| **top-1, mean of the fold models** | | **{:.1} of {}** |\n",
        hits as f64 / models.len() as f64,
        probe.len()
    );
    table
}

/// Cross-validated scores, overall and per source.
struct Scores {
    all: SourceScores,
    by_source: BTreeMap<String, SourceScores>,
}

#[derive(Default)]
struct SourceScores {
    rows: usize,
    top1: f64,
    macro_f1: f64,
    gold_macro_f1: f64,
    label_f1: f64,
    /// Top-level topic id → (true positives, false positives, false negatives).
    counts: BTreeMap<u16, (usize, usize, usize)>,
}

impl SourceScores {
    /// A table of each top-level topic's counts and F1: where the errors are.
    fn per_topic(&self, taxonomy: &Taxonomy) -> String {
        let mut table = String::from(
            "| top-level topic | gold | predicted | correct | F1 |\n|---|---:|---:|---:|---:|\n",
        );
        for (id, &(tp, fp, fn_)) in &self.counts {
            let name = taxonomy.name(*id);
            table += &format!(
                "| {name} | {} | {} | {tp} | {:.1} % |\n",
                tp + fn_,
                tp + fp,
                f1(tp, fp, fn_) * 100.0
            );
        }
        table
    }
}

impl Scores {
    fn of(rows: &[Row], predictions: &[Option<Classification>]) -> Scores {
        let score = |filter: &dyn Fn(&Row) -> bool| -> SourceScores {
            let picked: Vec<(&Row, &Classification)> = rows
                .iter()
                .zip(predictions)
                .filter(|(r, _)| filter(r))
                .filter_map(|(r, p)| Some((r, p.as_ref()?)))
                .collect();
            let top1 = picked
                .iter()
                .filter(|(r, p)| p.top_level.first().is_some_and(|s| r.top_level.contains(&s.id)))
                .count();
            // Per-class F1 over the top-level classes that occur in the gold labels or the
            // predictions, then their mean.
            let mut counts: BTreeMap<u16, (usize, usize, usize)> = BTreeMap::new();
            let (mut label_tp, mut label_predicted, mut label_gold) = (0, 0, 0);
            for (row, prediction) in &picked {
                let predicted: Vec<u16> = prediction.top_level.iter().map(|s| s.id).collect();
                let union: BTreeSet<u16> = predicted.iter().chain(&row.top_level).copied().collect();
                for id in union {
                    let entry = counts.entry(id).or_default();
                    match (predicted.contains(&id), row.top_level.contains(&id)) {
                        (true, true) => entry.0 += 1,
                        (true, false) => entry.1 += 1,
                        (false, true) => entry.2 += 1,
                        (false, false) => {}
                    }
                }
                let labels: Vec<u16> = prediction.labels.iter().map(|s| s.id).collect();
                label_tp += labels.iter().filter(|id| row.labels.contains(id)).count();
                label_predicted += labels.len();
                label_gold += row.labels.len();
            }
            let f1s: Vec<f64> = counts.values().map(|&(tp, fp, fn_)| f1(tp, fp, fn_)).collect();
            let gold_f1s: Vec<f64> =
                counts.values().filter(|c| c.0 + c.2 > 0).map(|&(tp, fp, fn_)| f1(tp, fp, fn_)).collect();
            SourceScores {
                rows: picked.len(),
                top1: top1 as f64 / picked.len().max(1) as f64,
                macro_f1: f1s.iter().sum::<f64>() / f1s.len().max(1) as f64,
                gold_macro_f1: gold_f1s.iter().sum::<f64>() / gold_f1s.len().max(1) as f64,
                label_f1: f1(label_tp, label_predicted - label_tp, label_gold - label_tp),
                counts,
            }
        };
        let sources: Vec<String> =
            rows.iter().map(|r| r.source.clone()).collect::<BTreeSet<_>>().into_iter().collect();
        Scores {
            all: score(&|_| true),
            by_source: sources.into_iter().map(|s| (s.clone(), score(&|r: &Row| r.source == s))).collect(),
        }
    }
}

fn f1(tp: usize, fp: usize, fn_: usize) -> f64 {
    if tp == 0 { 0.0 } else { 2.0 * tp as f64 / (2 * tp + fp + fn_) as f64 }
}

/// One table of cross-validated scores: a row for all rows and one per source, for each
/// way of predicting (`kinds`: its name for the rows, e.g. "restricted", and its scores).
fn score_table(kinds: &[(&str, &Scores)]) -> String {
    let mut table = String::from(
        "| rows | top-level top-1 | top-level macro-F1 (gold ∪ predicted classes) | (gold classes) | label micro-F1 |\n\
         |---|---:|---:|---:|---:|\n",
    );
    for (kind, scores) in kinds {
        let sources = std::iter::once(("all", &scores.all))
            .chain(scores.by_source.iter().map(|(n, s)| (n.as_str(), s)));
        for (name, s) in sources {
            table += &format!(
                "| {name} ({}){kind} | {:.1} % | {:.1} % | {:.1} % | {:.1} % |\n",
                s.rows,
                s.top1 * 100.0,
                s.macro_f1 * 100.0,
                s.gold_macro_f1 * 100.0,
                s.label_f1 * 100.0
            );
        }
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_topic_without_pages_is_rarer_than_three_pages() {
        // Topic 1 is the rarest with 15 pages: a topic with none sits ln(3/15) below its prior.
        let pages = BTreeMap::from([(0, 300), (1, 15), (2, 15)]);
        let prior = prior_without_pages(&[2.0, 0.5, 0.0], &pages).unwrap();
        assert!((prior - (0.5 + (0.2f64).ln())).abs() < 1e-12, "{prior}");
        // Never above the rarest topic's prior, even when it has fewer than 3 pages.
        assert_eq!(prior_without_pages(&[2.0, 0.5], &BTreeMap::from([(0, 300), (1, 1)])), Some(0.5));
        assert_eq!(prior_without_pages(&[2.0], &BTreeMap::new()), None);
    }

    #[test]
    fn a_bad_labelled_row_is_refused_with_its_line() {
        let taxonomy = Taxonomy {
            ids: vec![299],
            parents: vec![None],
            names: vec!["Sports".to_owned()],
            index: HashMap::from([(299, 0)]),
        };
        let dir = std::env::temp_dir().join(format!("portrait-topics-rows-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cases = [
            ("{\"id\": \"a\", \"title\": \"Goal\", \"label_ids\": [299]}\n{\"id\": ", ":2: "),
            ("{\"id\": \"a\", \"title\": \"Goal\", \"label_ids\": [12345]}\n", ":1: no known label_ids"),
        ];
        for (text, expected) in cases {
            let path = dir.join("rows.jsonl");
            std::fs::write(&path, text).unwrap();
            let error = read_rows(&path, &taxonomy).err().expect("refused");
            assert!(error.contains(expected), "{error}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
