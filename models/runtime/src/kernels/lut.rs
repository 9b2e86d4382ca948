//! A 256-entry lookup table from one 8-bit type to another: how LiteRT evaluates int8/uint8
//! LOGISTIC, TANH and friends, and an exact form of any 8-bit -> 8-bit requantization.

use tract_core::internal::*;

use super::{slice_of, tensor_with, with_int, Int};

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
        let offset = match input.datum_type().unquantized() {
            DatumType::I8 => 128,
            DatumType::U8 => 0,
            dt => bail!("lookup tables take i8 or u8 input, got {dt:?}"),
        };
        let out = with_int!(self.out, O => {
            let table: Vec<O> = self.table.iter().map(|&v| O::from_i32(v)).collect();
            with_int!(input.datum_type(), I => {
                let x = slice_of::<I>(&input)?;
                tensor_with::<O>(self.out, input.shape(), |o| {
                    for (o, &v) in o.iter_mut().zip(x) {
                        // the index is in 0..256 for i8 (offset 128) and u8 inputs
                        *o = table[((v.to_i32() + offset) & 0xff) as usize];
                    }
                })?
            })
        });
        Ok(tvec!(out.into_tvalue()))
    }
}

impl TypedOp for Lut8 {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        Ok(tvec!(self.out.fact(inputs[0].shape.clone())))
    }
    as_op!();
}
