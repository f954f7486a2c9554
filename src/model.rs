//! The model: an [`Ensemble`] of one or more networks, each a multilayer perceptron
//! ([`Mlp`], built by [`MlpConfig`]). The ensemble is the one model type the model directory,
//! prediction, export and the service see; a model of one network is its one-member case.

use burn::nn::{Dropout, DropoutConfig, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation;
use serde::{Deserialize, Serialize};

use crate::config::Activation;
use crate::data::Encoded;

/// A batch of encoded rows on a device: dense numbers, and the category codes embeddings look
/// up (`None` when the recipe embeds no column, as recipe `mlp` version 1).
#[derive(Debug, Clone)]
pub struct Inputs<B: Backend> {
    /// `[batch, dense inputs]`.
    pub dense: Tensor<B, 2>,
    /// `[batch, embedded columns]`.
    pub codes: Option<Tensor<B, 2, Int>>,
}

impl<B: Backend> Inputs<B> {
    /// Uploads a batch. Takes its buffers: on the CPU backend the tensors reuse them (no
    /// copy), on a GPU they are uploaded and freed, so the host keeps no second copy.
    pub fn new(batch: Encoded, device: &B::Device) -> Self {
        let (rows, dense_width, code_width) =
            (batch.rows(), batch.dense_width(), batch.code_width());
        let (dense, codes) = batch.into_parts();
        let codes = (code_width > 0).then(|| {
            let codes: Vec<i64> = codes.into_iter().map(i64::from).collect();
            Tensor::from_data(TensorData::new(codes, [rows, code_width]), device)
        });
        Inputs {
            dense: Tensor::from_data(TensorData::new(dense, [rows, dense_width]), device),
            codes,
        }
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.dense.dims()[0]
    }

    /// The rows `index` names, in its order.
    pub fn select(&self, index: Tensor<B, 1, Int>) -> Self {
        Inputs {
            dense: self.dense.clone().select(0, index.clone()),
            codes: self.codes.clone().map(|c| c.select(0, index)),
        }
    }

    /// The rows `rows`.
    pub fn slice(&self, rows: std::ops::Range<usize>) -> Self {
        Inputs {
            dense: self.dense.clone().slice(rows.clone()),
            codes: self.codes.clone().map(|c| c.slice(rows)),
        }
    }
}

impl<B: burn::tensor::backend::AutodiffBackend> Inputs<B> {
    /// A batch of the inner backend as this autodiff backend's (no gradient flows into inputs).
    pub fn from_inner(inner: Inputs<B::InnerBackend>) -> Self {
        Inputs {
            dense: Tensor::from_inner(inner.dense),
            codes: inner.codes.map(Tensor::from_inner),
        }
    }
}

/// The architecture: enough to rebuild the network before loading its weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MlpConfig {
    /// Number of input features.
    pub inputs: usize,
    /// Hidden layer widths.
    pub hidden: Vec<usize>,
    /// Number of classes.
    pub outputs: usize,
    /// Activation after each hidden layer.
    pub activation: Activation,
    /// Dropout probability after each hidden activation (training only).
    pub dropout: f64,
}

impl MlpConfig {
    /// Widths of every layer boundary: inputs, hidden..., outputs.
    pub fn widths(&self) -> Vec<usize> {
        std::iter::once(self.inputs)
            .chain(self.hidden.iter().copied())
            .chain(std::iter::once(self.outputs))
            .collect()
    }

    /// Expected `[d_input, d_output]` weight shape of each linear layer.
    pub fn layer_shapes(&self) -> Vec<[usize; 2]> {
        self.widths().windows(2).map(|w| [w[0], w[1]]).collect()
    }

    /// Number of trainable parameters (weights and biases), saturating on absurd sizes.
    pub fn num_params(&self) -> usize {
        self.layer_shapes().iter().fold(0usize, |acc, [i, o]| {
            acc.saturating_add(i.saturating_mul(*o).saturating_add(*o))
        })
    }

    /// Builds the network with freshly initialised weights on `device`.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Mlp<B> {
        Mlp {
            layers: self
                .layer_shapes()
                .iter()
                .map(|&[i, o]| LinearConfig::new(i, o).init(device))
                .collect(),
            dropout: DropoutConfig::new(self.dropout).init(),
            activation: self.activation,
        }
    }
}

/// Linear layers with an activation (and dropout) between them.
#[derive(Module, Debug)]
pub struct Mlp<B: Backend> {
    layers: Vec<Linear<B>>,
    dropout: Dropout,
    #[module(skip)]
    activation: Activation,
}

impl<B: Backend> Mlp<B> {
    /// Renumbers the parameters 0, 1, 2... in visiting order.
    ///
    /// Burn gives parameters random ids, which it writes into the record; renumbering makes the
    /// same weights always serialise to the same bytes.
    pub fn with_stable_ids(self) -> Self {
        struct Renumber(u64);
        impl<B: Backend> burn::module::ModuleMapper<B> for Renumber {
            fn map_float<const D: usize>(
                &mut self,
                param: burn::module::Param<Tensor<B, D>>,
            ) -> burn::module::Param<Tensor<B, D>> {
                let (_, tensor, mapper) = param.consume();
                self.0 += 1;
                burn::module::Param::from_mapped_value(self.0.into(), tensor, mapper)
            }
        }
        self.map(&mut Renumber(0))
    }

    /// Class logits for a batch of standardised feature rows.
    ///
    /// # Shapes
    /// - input: `[batch, inputs]`
    /// - output: `[batch, outputs]` (logits, before softmax)
    pub fn forward(&self, input: Tensor<B, 2>) -> Tensor<B, 2> {
        let last = self.layers.len() - 1;
        let mut x = input;
        for (i, layer) in self.layers.iter().enumerate() {
            x = layer.forward(x);
            if i < last {
                x = match self.activation {
                    Activation::Relu => activation::relu(x),
                    Activation::Gelu => activation::gelu(x),
                    Activation::Tanh => activation::tanh(x),
                    Activation::Sigmoid => activation::sigmoid(x),
                };
                x = self.dropout.forward(x);
            }
        }
        x
    }

    /// [`Mlp::forward`] of a batch of encoded rows. This network embeds no column: the batch
    /// has no codes.
    pub fn forward_inputs(&self, inputs: Inputs<B>) -> Tensor<B, 2> {
        debug_assert!(
            inputs.codes.is_none(),
            "an MLP without embeddings given codes"
        );
        self.forward(inputs.dense)
    }

    /// Each linear layer's weights on the host, in order (for a graph written elsewhere).
    pub fn layers_to_host(&self) -> Vec<LayerWeights> {
        self.layers
            .iter()
            .map(|layer| {
                let w = layer.weight.val();
                let [d_in, d_out] = w.dims();
                LayerWeights {
                    shape: [d_in, d_out],
                    weight: to_host(w.into_data()),
                    bias: layer
                        .bias
                        .as_ref()
                        .map_or_else(|| vec![0.0; d_out], |b| to_host(b.val().into_data())),
                }
            })
            .collect()
    }

    /// [`Mlp::forward_inputs`], with the logits copied to the host as row-major `f32`s.
    pub fn logits_to_host(&self, inputs: Inputs<B>) -> Vec<f32> {
        to_host(self.forward_inputs(inputs).into_data())
    }
}

/// A tensor's values as row-major `f32`s (empty if they cannot be read as such).
fn to_host(data: TensorData) -> Vec<f32> {
    data.convert::<f32>().into_vec::<f32>().unwrap_or_default()
}

/// One linear layer's weights, copied to the host: `y = x W + b`.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerWeights {
    /// `[inputs, outputs]`.
    pub shape: [usize; 2],
    /// Row-major `[inputs, outputs]`.
    pub weight: Vec<f32>,
    /// `[outputs]`.
    pub bias: Vec<f32>,
}

/// Why a loaded record cannot be the model its metadata describes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordMismatch {
    /// A different number of networks.
    #[error("{found} networks, expected {expected}")]
    Members {
        /// Networks in the record.
        found: usize,
        /// Networks the metadata describes.
        expected: usize,
    },
    /// A different number of layers.
    #[error("{found} linear layers, expected {expected}")]
    Layers {
        /// Layers in the record.
        found: usize,
        /// Layers the architecture has.
        expected: usize,
    },
    /// A weight of another shape.
    #[error("layer {layer} weight is {found:?}, expected {expected:?}")]
    Weight {
        /// 0-based layer.
        layer: usize,
        /// Its shape in the record.
        found: Vec<usize>,
        /// The architecture's.
        expected: [usize; 2],
    },
    /// A layer without its bias.
    #[error("layer {layer} has no bias")]
    NoBias {
        /// 0-based layer.
        layer: usize,
    },
    /// A bias of another shape.
    #[error("layer {layer} bias is {found:?}, expected [{expected}]")]
    Bias {
        /// 0-based layer.
        layer: usize,
        /// Its shape in the record.
        found: Vec<usize>,
        /// The architecture's width.
        expected: usize,
    },
    /// NaN or infinite weights.
    #[error("layer {layer} holds non-finite weights")]
    NonFinite {
        /// 0-based layer.
        layer: usize,
    },
    /// One network of several does not match.
    #[error("network {member}: {error}")]
    Member {
        /// 0-based network.
        member: usize,
        /// What is wrong with it.
        error: Box<RecordMismatch>,
    },
}

/// Checks a loaded record against the architecture before it replaces any weights.
pub fn check_record<B: Backend>(
    config: &MlpConfig,
    record: &MlpRecord<B>,
) -> Result<(), RecordMismatch> {
    let expected = config.layer_shapes();
    if record.layers.len() != expected.len() {
        return Err(RecordMismatch::Layers {
            found: record.layers.len(),
            expected: expected.len(),
        });
    }
    for (i, (layer, [d_in, d_out])) in record.layers.iter().zip(expected).enumerate() {
        let w = layer.weight.val();
        if w.dims() != [d_in, d_out] {
            return Err(RecordMismatch::Weight {
                layer: i,
                found: w.dims().to_vec(),
                expected: [d_in, d_out],
            });
        }
        let Some(bias) = &layer.bias else {
            return Err(RecordMismatch::NoBias { layer: i });
        };
        let b = bias.val();
        if b.dims() != [d_out] {
            return Err(RecordMismatch::Bias {
                layer: i,
                found: b.dims().to_vec(),
                expected: d_out,
            });
        }
        let finite = |data: TensorData| {
            data.convert::<f32>()
                .into_vec::<f32>()
                .is_ok_and(|v| v.iter().all(|x| x.is_finite()))
        };
        if !finite(w.into_data()) || !finite(b.into_data()) {
            return Err(RecordMismatch::NonFinite { layer: i });
        }
    }
    Ok(())
}

/// The model's architecture: how many networks, and the one shape they all have.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnsembleConfig {
    /// Number of inputs of each network.
    pub inputs: usize,
    /// Hidden layer widths.
    pub hidden: Vec<usize>,
    /// Number of outputs: classes, or 1 for a number.
    pub outputs: usize,
    /// Activation after each hidden layer.
    pub activation: Activation,
    /// Dropout probability after each hidden activation (training only).
    pub dropout: f64,
    /// Networks whose answers are averaged (1: a single network).
    #[serde(default = "one")]
    pub members: usize,
}

fn one() -> usize {
    1
}

impl EnsembleConfig {
    /// `members` networks of the architecture `network`.
    pub fn new(network: &MlpConfig, members: usize) -> Self {
        EnsembleConfig {
            inputs: network.inputs,
            hidden: network.hidden.clone(),
            outputs: network.outputs,
            activation: network.activation,
            dropout: network.dropout,
            members,
        }
    }

    /// The architecture of each network.
    pub fn network(&self) -> MlpConfig {
        MlpConfig {
            inputs: self.inputs,
            hidden: self.hidden.clone(),
            outputs: self.outputs,
            activation: self.activation,
            dropout: self.dropout,
        }
    }

    /// Widths of every layer boundary of each network: inputs, hidden..., outputs.
    pub fn widths(&self) -> Vec<usize> {
        self.network().widths()
    }

    /// Expected `[d_input, d_output]` weight shape of each network's linear layers.
    pub fn layer_shapes(&self) -> Vec<[usize; 2]> {
        self.network().layer_shapes()
    }

    /// Trainable parameters of all the networks, saturating on absurd sizes.
    pub fn num_params(&self) -> usize {
        self.network().num_params().saturating_mul(self.members)
    }

    /// How the networks' answers are combined: probabilities for a classifier (more than one
    /// output), numbers for a regressor.
    pub fn combine(&self) -> Combine {
        if self.outputs > 1 {
            Combine::MeanProbabilities
        } else {
            Combine::MeanValue
        }
    }

    /// Checks a loaded record: as many networks as `members`, each of this architecture.
    pub fn check_record<B: Backend>(
        &self,
        record: &EnsembleRecord<B>,
    ) -> Result<(), RecordMismatch> {
        if record.members.len() != self.members {
            return Err(RecordMismatch::Members {
                found: record.members.len(),
                expected: self.members,
            });
        }
        let network = self.network();
        for (m, r) in record.members.iter().enumerate() {
            check_record(&network, r).map_err(|e| match self.members {
                1 => e,
                _ => RecordMismatch::Member {
                    member: m,
                    error: Box::new(e),
                },
            })?;
        }
        Ok(())
    }

    /// The model with `members` freshly initialised networks on `device`, to load a record into.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Ensemble<B> {
        let network = self.network();
        Ensemble::new(
            (0..self.members).map(|_| network.init(device)).collect(),
            self.combine(),
        )
    }
}

/// How an ensemble's networks' answers become the model's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Combine {
    /// The mean of the members' softmax probabilities; the model's outputs are their logarithms,
    /// so a softmax of them gives the mean back.
    #[default]
    MeanProbabilities,
    /// The mean of the members' outputs.
    MeanValue,
}

/// The model: one or more networks of one architecture whose answers are averaged.
#[derive(Module, Debug)]
pub struct Ensemble<B: Backend> {
    members: Vec<Mlp<B>>,
    #[module(skip)]
    combine: Combine,
}

impl<B: Backend> Ensemble<B> {
    /// The model of the networks `members` (at least one), combined by `combine`.
    pub fn new(members: Vec<Mlp<B>>, combine: Combine) -> Self {
        Ensemble { members, combine }
    }

    /// Its networks.
    pub fn members(&self) -> &[Mlp<B>] {
        &self.members
    }

    /// Renumbers the parameters 0, 1, 2... in visiting order, across every network (see
    /// [`Mlp::with_stable_ids`]): the same weights always serialise to the same bytes.
    pub fn with_stable_ids(self) -> Self {
        struct Renumber(u64);
        impl<B: Backend> burn::module::ModuleMapper<B> for Renumber {
            fn map_float<const D: usize>(
                &mut self,
                param: burn::module::Param<Tensor<B, D>>,
            ) -> burn::module::Param<Tensor<B, D>> {
                let (_, tensor, mapper) = param.consume();
                self.0 += 1;
                burn::module::Param::from_mapped_value(self.0.into(), tensor, mapper)
            }
        }
        self.map(&mut Renumber(0))
    }

    /// The model's outputs for a batch of encoded rows: one network's logits (or standardised
    /// number), or the combination of several (see [`Combine`]).
    ///
    /// # Shapes
    /// - input: `dense` `[batch, inputs]`
    /// - output: `[batch, outputs]`
    pub fn forward(&self, input: Inputs<B>) -> Tensor<B, 2> {
        match self.members.as_slice() {
            [one] => one.forward_inputs(input),
            members => {
                let k = members.len() as f64;
                let outputs = members.iter().map(|m| m.forward_inputs(input.clone()));
                match self.combine {
                    Combine::MeanValue => {
                        outputs.reduce(|a, b| a + b).map_or(input.dense, |s| s / k)
                    }
                    Combine::MeanProbabilities => outputs
                        .map(|o| activation::softmax(o, 1))
                        .reduce(|a, b| a + b)
                        .map_or(input.dense, |s| (s / k).clamp_min(1e-30).log()),
                }
            }
        }
    }

    /// [`Ensemble::forward`], with the outputs copied to the host as row-major `f32`s.
    pub fn outputs_to_host(&self, input: Inputs<B>) -> Vec<f32> {
        to_host(self.forward(input).into_data())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_and_parameter_count() {
        let c = MlpConfig {
            inputs: 4,
            hidden: vec![16, 8],
            outputs: 3,
            activation: Activation::Relu,
            dropout: 0.0,
        };
        assert_eq!(c.layer_shapes(), [[4, 16], [16, 8], [8, 3]]);
        // 4*16+16 + 16*8+8 + 8*3+3
        assert_eq!(c.num_params(), 80 + 136 + 27);
    }

    type B = crate::backend::Backend;

    fn network(outputs: usize) -> MlpConfig {
        MlpConfig {
            inputs: 3,
            hidden: vec![5],
            outputs,
            activation: Activation::Tanh,
            dropout: 0.0,
        }
    }

    fn host(t: Tensor<B, 2>) -> Vec<f32> {
        t.into_data().convert::<f32>().into_vec::<f32>().unwrap()
    }

    #[test]
    fn one_network_is_the_model_and_several_are_averaged() {
        let device = Default::default();
        let x = Inputs::<B>::new(
            Encoded::dense_only(vec![0.5f32, -1.0, 2.0, 0.0, 1.0, -0.5], 3).unwrap(),
            &device,
        );
        assert_eq!(x.rows(), 2);
        let (a, b) = (network(3).init::<B>(&device), network(3).init::<B>(&device));
        let (la, lb) = (
            host(a.forward_inputs(x.clone())),
            host(b.forward_inputs(x.clone())),
        );
        let single = Ensemble::new(vec![a.clone()], Combine::MeanProbabilities);
        assert_eq!(host(single.forward(x.clone())), la);
        let both = Ensemble::new(vec![a, b], Combine::MeanProbabilities);
        let probs = crate::metrics::softmax_rows(&host(both.forward(x.clone())), 3);
        let (pa, pb) = (
            crate::metrics::softmax_rows(&la, 3),
            crate::metrics::softmax_rows(&lb, 3),
        );
        for i in 0..6 {
            assert!((probs[i] - (pa[i] + pb[i]) / 2.0).abs() < 1e-6, "{probs:?}");
        }
        let (c, d) = (network(1).init::<B>(&device), network(1).init::<B>(&device));
        let (vc, vd) = (
            host(c.forward_inputs(x.clone())),
            host(d.forward_inputs(x.clone())),
        );
        let mean = host(Ensemble::new(vec![c, d], Combine::MeanValue).forward(x));
        for i in 0..2 {
            assert!((mean[i] - (vc[i] + vd[i]) / 2.0).abs() < 1e-6);
        }
    }

    #[test]
    fn a_record_with_another_number_of_networks_is_refused() {
        let device = Default::default();
        let two = EnsembleConfig::new(&network(3), 2);
        let record = two.init::<B>(&device).into_record();
        assert!(two.check_record(&record).is_ok());
        let one = EnsembleConfig::new(&network(3), 1);
        assert_eq!(
            one.check_record(&record).unwrap_err().to_string(),
            "2 networks, expected 1"
        );
        assert_eq!(two.num_params(), 2 * network(3).num_params());
        assert_eq!(two.combine(), Combine::MeanProbabilities);
        assert_eq!(
            EnsembleConfig::new(&network(1), 2).combine(),
            Combine::MeanValue
        );
    }
}
