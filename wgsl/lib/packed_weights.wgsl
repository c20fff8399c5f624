// Weights bound as u32 words, stored f32 (bits) or f16 packed two per word (F16_WEIGHTS): read either way without
// shader-f16, widened to f32. Element i lives in word word_of(i); value_in(word, i) is its value.

override F16_WEIGHTS: bool = false;

fn word_of(i: u32) -> u32 {
  if (F16_WEIGHTS) { return i / 2u; }
  return i;
}

fn value_in(word: u32, i: u32) -> f32 {
  if (F16_WEIGHTS) { return unpack2x16float(word)[i & 1u]; }
  return bitcast<f32>(word);
}
