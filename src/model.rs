//! The multilayer perceptron: `MlpConfig` builds an `Mlp`.

use burn::nn::{Dropout, DropoutConfig, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation;
use serde::{Deserialize, Serialize};

use crate::config::Activation;

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

    /// [`Mlp::forward`], with the logits copied to the host as row-major `f32`s.
    pub fn logits_to_host(&self, input: Tensor<B, 2>) -> Vec<f32> {
        let data = self.forward(input).into_data();
        data.convert::<f32>().into_vec::<f32>().unwrap_or_default()
    }
}

/// Checks a loaded record against the architecture before it replaces any weights.
pub fn check_record<B: Backend>(config: &MlpConfig, record: &MlpRecord<B>) -> Result<(), String> {
    let expected = config.layer_shapes();
    if record.layers.len() != expected.len() {
        return Err(format!(
            "{} linear layers, expected {}",
            record.layers.len(),
            expected.len()
        ));
    }
    for (i, (layer, [d_in, d_out])) in record.layers.iter().zip(expected).enumerate() {
        let w = layer.weight.val();
        if w.dims() != [d_in, d_out] {
            return Err(format!(
                "layer {i} weight is {:?}, expected {:?}",
                w.dims(),
                [d_in, d_out]
            ));
        }
        let Some(bias) = &layer.bias else {
            return Err(format!("layer {i} has no bias"));
        };
        let b = bias.val();
        if b.dims() != [d_out] {
            return Err(format!(
                "layer {i} bias is {:?}, expected [{d_out}]",
                b.dims()
            ));
        }
        let finite = |data: TensorData| {
            data.convert::<f32>()
                .into_vec::<f32>()
                .is_ok_and(|v| v.iter().all(|x| x.is_finite()))
        };
        if !finite(w.into_data()) || !finite(b.into_data()) {
            return Err(format!("layer {i} holds non-finite weights"));
        }
    }
    Ok(())
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
}
