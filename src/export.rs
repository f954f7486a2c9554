//! `model.safetensors`: the network's weights in PyTorch's layout, for tools that are not Burn
//! (PyTorch, JAX, numpy, Hugging Face), with everything needed to use them in the file's
//! `__metadata__`.
//!
//! Tensors are `layers.{i}.weight` (`[out, in]`, as `torch.nn.Linear` keeps them) and
//! `layers.{i}.bias` (`[out]`), all `F32`; a model of several networks has each network's under
//! `members.{m}.` (average their softmax probabilities, or their numbers). The metadata keys, every value a string (JSON where
//! structured):
//!
//! | key | value |
//! |---|---|
//! | `created_by` | `iris-trainer <version>` |
//! | `task` | `classification` or `regression` |
//! | `label` | the label column's name |
//! | `features` | JSON list: the raw feature columns, in order |
//! | `preprocess` | JSON: how each column becomes inputs, as `preprocess` in `model.json` |
//! | `inputs` | JSON list: the network's input names (`col`, `col=level`, `col:missing`) |
//! | `scaling` | JSON `{"mean": [...], "std": [...]}`, one per input |
//! | `classes` | JSON list, in output order (classification) |
//! | `target_scaling` | JSON `{"mean", "std"}`: `y = output * std + mean` (regression) |
//! | `activation` | `relu`, `gelu`, `tanh` or `sigmoid`, after every layer but the last |
//! | `layers` | JSON list of the layer names, in order (`layers.0`, ...; `members.0.layers.0`, ... for several networks) |
//! | `output` | what the last layer gives |
//!
//! Burn's own `format`, `producer` and `version` keys are kept.

use std::collections::BTreeMap;

use burn::prelude::Backend;
use burn_store::{BurnToPyTorchAdapter, ModuleSnapshot, SafetensorsStore};
use serde::Serialize;
use serde_json::json;

use crate::data::{Encoder, Task};
use crate::error::{Error, Result};
use crate::metadata::Metadata;
use crate::model::Ensemble;

/// The metadata written into the file's `__metadata__`, by key.
pub fn safetensors_metadata(meta: &Metadata) -> BTreeMap<String, String> {
    let encoding = meta.preprocessor().encoding;
    let depth = meta.model.layer_shapes().len();
    let layers: Vec<String> = match meta.model.members {
        1 => (0..depth).map(|i| format!("layers.{i}")).collect(),
        k => (0..k)
            .flat_map(|m| (0..depth).map(move |i| format!("members.{m}.layers.{i}")))
            .collect(),
    };
    let mut m = BTreeMap::new();
    let mut put = |k: &str, v: String| {
        m.insert(k.to_string(), v);
    };
    put("created_by", meta.created_by.clone());
    put("task", meta.task.to_string());
    put("label", meta.label.clone());
    put("features", json!(meta.features).to_string());
    /// `preprocess` without the training file's column list, which only `predict` needs.
    #[derive(Serialize)]
    struct Preprocess<'a> {
        columns: &'a [Encoder],
        missing_values: &'a [String],
    }
    // Serialised directly (not through `json!`), so `f32`s keep their shortest form.
    put(
        "preprocess",
        to_json(&Preprocess {
            columns: &encoding.columns,
            missing_values: &encoding.missing_values,
        }),
    );
    put("inputs", json!(encoding.input_names()).to_string());
    put("scaling", to_json(&meta.preprocessing.scaling));
    put("activation", meta.model.activation.to_string());
    put("layers", json!(layers).to_string());
    match meta.task {
        Task::Classification => {
            put("classes", json!(meta.classes).to_string());
            put(
                "output",
                "logits, one per class; softmax gives the probabilities".into(),
            );
        }
        Task::Regression => {
            if let Some(t) = meta.preprocessing.target_scaling {
                put("target_scaling", to_json(&t));
            }
            put(
                "output",
                "the standardised target; prediction = output * target_scaling.std + target_scaling.mean"
                    .into(),
            );
        }
    }
    m
}

fn to_json(value: &impl Serialize) -> String {
    // Plain data (strings, numbers, lists): serialising it cannot fail.
    serde_json::to_string(value).unwrap_or_default()
}

/// The safetensors file of `model`, described by `meta` (see the module docs).
///
/// The same weights and metadata always give the same bytes.
pub fn safetensors<B: Backend>(model: &Ensemble<B>, meta: &Metadata) -> Result<Vec<u8>> {
    let err = |e: &dyn std::fmt::Display| Error::Internal(format!("writing safetensors: {e}"));
    let mut store = SafetensorsStore::from_bytes(None).with_to_adapter(BurnToPyTorchAdapter);
    for (k, v) in safetensors_metadata(meta) {
        store = store.metadata(k, v);
    }
    match model.members() {
        [one] => one.save_into(&mut store),
        _ => model.save_into(&mut store),
    }
    .map_err(|e| err(&e))?;
    let bytes = store.get_bytes().map_err(|e| err(&e))?;
    canonical_header(bytes).map_err(|e| err(&e))
}

/// Why the header written by the safetensors crate could not be put in canonical form.
#[derive(Debug, thiserror::Error)]
enum HeaderError {
    #[error("the header length is invalid")]
    Length,
    #[error("{0}")]
    Json(serde_json::Error),
    #[error("the sorted header is longer than the original")]
    Longer,
}

/// Rewrites the JSON header with its keys sorted, so the file does not depend on hash-map order
/// (the safetensors crate keeps the metadata in a `HashMap`). Tensor offsets are relative to the
/// data, which is untouched; the header keeps its length.
fn canonical_header(bytes: Vec<u8>) -> std::result::Result<Vec<u8>, HeaderError> {
    let n = bytes
        .get(..8)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(u64::from_le_bytes)
        .and_then(|n| usize::try_from(n).ok())
        .filter(|&n| n <= bytes.len() - 8)
        .ok_or(HeaderError::Length)?;
    let header: BTreeMap<String, serde_json::Value> =
        serde_json::from_slice(&bytes[8..8 + n]).map_err(HeaderError::Json)?;
    // `BTreeMap`s all the way down: sorted keys, also inside `__metadata__`.
    let sorted: BTreeMap<String, BTreeMap<String, serde_json::Value>> = header
        .into_iter()
        .map(|(k, v)| serde_json::from_value(v).map(|v| (k, v)))
        .collect::<std::result::Result<_, _>>()
        .map_err(HeaderError::Json)?;
    let mut text = serde_json::to_vec(&sorted).map_err(HeaderError::Json)?;
    if text.len() > n {
        return Err(HeaderError::Longer);
    }
    text.resize(n, b' ');
    let mut out = Vec::with_capacity(bytes.len());
    out.extend_from_slice(&bytes[..8]);
    out.extend_from_slice(&text);
    out.extend_from_slice(&bytes[8 + n..]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    // Round trips through a trained model are tested in `pipeline`, which may train one.
    use super::*;

    #[test]
    fn a_broken_header_is_refused() {
        assert!(canonical_header(vec![1, 2, 3]).is_err());
        let mut b = 100u64.to_le_bytes().to_vec();
        b.extend_from_slice(b"{}");
        assert!(canonical_header(b).is_err());
        let mut b = 2u64.to_le_bytes().to_vec();
        b.extend_from_slice(b"[]");
        assert!(canonical_header(b).is_err());
    }

    #[test]
    fn the_header_is_sorted_and_keeps_its_length() {
        let text = br#"{"z":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"__metadata__":{"b":"1","a":"2"}}"#;
        let mut padded = text.to_vec();
        padded.resize(text.len().next_multiple_of(8) + 8, b' ');
        let mut file = (padded.len() as u64).to_le_bytes().to_vec();
        file.extend_from_slice(&padded);
        file.extend_from_slice(&1f32.to_le_bytes());
        let out = canonical_header(file.clone()).unwrap();
        assert_eq!(out.len(), file.len());
        assert_eq!(out[..8], file[..8]);
        let header = std::str::from_utf8(&out[8..8 + padded.len()])
            .unwrap()
            .trim_end();
        assert_eq!(
            header,
            r#"{"__metadata__":{"a":"2","b":"1"},"z":{"data_offsets":[0,4],"dtype":"F32","shape":[1]}}"#
        );
        assert_eq!(out[out.len() - 4..], 1f32.to_le_bytes());
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;
        use std::hash::BuildHasher;

        /// A safetensors file of one tensor, its header's keys in the given order.
        fn file(metadata: &[(String, String)]) -> Vec<u8> {
            let mut header = serde_json::Map::new();
            header.insert(
                "w".into(),
                json!({"shape": [1], "dtype": "F32", "data_offsets": [0, 4]}),
            );
            header.insert(
                "__metadata__".into(),
                serde_json::Value::Object(
                    metadata
                        .iter()
                        .map(|(k, v)| (k.clone(), json!(v)))
                        .collect(),
                ),
            );
            let mut text = serde_json::to_vec(&header).unwrap();
            text.resize(text.len().next_multiple_of(8), b' ');
            let mut out = (text.len() as u64).to_le_bytes().to_vec();
            out.extend_from_slice(&text);
            out.extend_from_slice(&2.5f32.to_le_bytes());
            out
        }

        proptest! {
            /// Any metadata, in any order: the same length, the same content, one canonical form.
            #[test]
            fn any_metadata_in_any_order_gives_one_file(
                pairs in proptest::collection::btree_map(".{0,12}", ".{0,20}", 0..12),
                seed in any::<u64>(),
            ) {
                let sorted: Vec<(String, String)> = pairs.into_iter().collect();
                let mut shuffled = sorted.clone();
                // A deterministic shuffle, from the seed.
                shuffled.sort_by_key(|(k, _)| foldhash::fast::FixedState::with_seed(seed).hash_one(k));
                let (a, b) = (file(&sorted), file(&shuffled));
                let (ca, cb) = (canonical_header(a.clone()).unwrap(), canonical_header(b).unwrap());
                prop_assert_eq!(&ca, &cb);
                prop_assert_eq!(ca.len(), a.len());
                let n = u64::from_le_bytes(ca[..8].try_into().unwrap()) as usize;
                let parsed: serde_json::Value = serde_json::from_slice(&ca[8..8 + n]).unwrap();
                let original: serde_json::Value = serde_json::from_slice(&a[8..8 + n]).unwrap();
                prop_assert_eq!(parsed, original);
                prop_assert_eq!(&ca[8 + n..], &2.5f32.to_le_bytes()[..]);
            }

            /// Arbitrary bytes are refused or rewritten, never a panic.
            #[test]
            fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
                let _ = canonical_header(bytes);
            }
        }
    }
}
