// Weights bound as u32 words, stored f32 (bits) or f16 packed two per word (F16_WEIGHTS): read either way without
// shader-f16, widened to f32. Element i lives in word word_of(i); value_in(word, i) is its value. A bias is stored as
// its weights are, or f32 beside f16 weights where it is made at run time (F16_BIAS false: a step's time projection
// plus a resnet conv's own bias, UNet.time_table): bias_word_of(i), bias_value_in(word, i).

override F16_WEIGHTS: bool = false;
override F16_BIAS: bool = F16_WEIGHTS;

fn word_in(i: u32, f16: bool) -> u32 {
  if (f16) { return i / 2u; }
  return i;
}

fn widened(word: u32, i: u32, f16: bool) -> f32 {
  if (f16) { return unpack2x16float(word)[i & 1u]; }
  return bitcast<f32>(word);
}

fn word_of(i: u32) -> u32 {
  return word_in(i, F16_WEIGHTS);
}

fn value_in(word: u32, i: u32) -> f32 {
  return widened(word, i, F16_WEIGHTS);
}

fn bias_word_of(i: u32) -> u32 {
  return word_in(i, F16_BIAS);
}

fn bias_value_in(word: u32, i: u32) -> f32 {
  return widened(word, i, F16_BIAS);
}
