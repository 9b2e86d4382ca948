//! A 256-entry lookup table from one 8-bit type to another: how LiteRT evaluates int8/uint8
//! LOGISTIC, TANH and friends, and an exact form of any 8-bit -> 8-bit requantization.

use tract_core::internal::*;

use super::i32s_to_tensor;

/// `out[i] = table[in[i] as u8 index]`, the index being `v + 128` for i8 and `v` for u8.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Lut8 {
    /// 256 output values (already in the output type's range).
    pub table: Vec<i32>,
    /// Output datum type.
    pub out: DatumType,
}

impl Lut8 {
    /// Builds a table by evaluating `f` on every input value of `input` (i8 or u8).
    pub fn build(input: DatumType, out: DatumType, f: impl Fn(i32) -> i32) -> TractResult<Self> {
        let offset = match input {
            DatumType::I8 => -128,
            DatumType::U8 => 0,
            dt => bail!("lookup tables take i8 or u8 input, got {dt:?}"),
        };
        Ok(Lut8 {
            table: (0..256).map(|i| f(i + offset)).collect(),
            out,
        })
    }
}

impl Op for Lut8 {
    fn name(&self) -> StaticName {
        "LitehouseLut8".into()
    }
    op_as_typed_op!();
}

impl EvalOp for Lut8 {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        let values: Vec<i32> = match input.datum_type().unquantized() {
            DatumType::I8 => input
                .to_plain_array_view::<i8>()?
                .iter()
                .map(|&v| self.table[(v as i32 + 128) as usize])
                .collect(),
            DatumType::U8 => input
                .to_plain_array_view::<u8>()?
                .iter()
                .map(|&v| self.table[v as usize])
                .collect(),
            dt => bail!("lookup tables take i8 or u8 input, got {dt:?}"),
        };
        Ok(tvec!(
            i32s_to_tensor(self.out, input.shape(), &values)?.into_tvalue()
        ))
    }
}

impl TypedOp for Lut8 {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        Ok(tvec!(self.out.fact(inputs[0].shape.clone())))
    }
    as_op!();
}
