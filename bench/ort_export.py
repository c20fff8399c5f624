"""The in-browser peer's model: the random SD 1.5 UNet (bench/torch_reference.py's config and seed) exported to ONNX
for ONNX Runtime Web's WebGPU execution provider (bench/h100_ort.sh, bench/ort_peer.html).

    python3 bench/ort_export.py OUT_DIR [--dtype f16|f32] [--tiny]

Writes OUT_DIR/unet.onnx with its weights beside it in OUT_DIR/unet.onnx.data (torch.onnx moves large weights out
whatever it is asked, so they always go there), and OUT_DIR/unet.json (its inputs' shapes and dtypes, which the page
feeds, and the weights file, which the page hands ONNX Runtime as external data). Inputs: sample (2, 4, 64, 64) and
encoder_hidden_states (2, 77, 768) in the model's dtype, timestep (1,) int64: one CFG evaluation at 512x512.
--tiny: a two-level UNet at 32x32 latents, for a dry run of the harness (in SwiftShader: f32, no shader-f16).
Needs torch, diffusers, onnx and onnxscript (the GPU machine has all but diffusers, carried as a wheel).
"""

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from torch_reference import SD15_UNET  # noqa: E402

TINY_UNET = dict(sample_size=32, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(32, 64),
                 cross_attention_dim=768, attention_head_dim=8, norm_num_groups=8,
                 down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                 up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"))
DTYPES = {"f16": torch.float16, "f32": torch.float32}


class NoisePrediction(torch.nn.Module):
    """The UNet's sample output as a plain tensor (ONNX outputs cannot be diffusers' output dataclass)."""

    def __init__(self, unet):
        super().__init__()
        self.unet = unet

    def forward(self, sample, timestep, encoder_hidden_states):
        return self.unet(sample, timestep, encoder_hidden_states=encoder_hidden_states, return_dict=False)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", type=Path)
    parser.add_argument("--dtype", choices=tuple(DTYPES), default="f16")
    parser.add_argument("--tiny", action="store_true")
    args = parser.parse_args()
    from diffusers import UNet2DConditionModel

    config = TINY_UNET if args.tiny else SD15_UNET
    dtype = DTYPES[args.dtype]
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    unet = UNet2DConditionModel(**config).to(device, dtype).eval()
    latent = config["sample_size"]
    inputs = {"sample": torch.randn(2, 4, latent, latent), "timestep": torch.tensor([500]),
              "encoder_hidden_states": torch.randn(2, 77, 768)}
    inputs = {k: v.to(device, dtype if v.is_floating_point() else v.dtype) for k, v in inputs.items()}
    args.out.mkdir(parents=True, exist_ok=True)
    with torch.inference_mode():
        program = torch.onnx.export(NoisePrediction(unet), tuple(inputs.values()), input_names=list(inputs),
                                    output_names=["noise"], dynamo=True)
    program.save(str(args.out / "unet.onnx"), external_data=True)
    feeds = {name: {"shape": list(t.shape), "dtype": args.dtype if t.is_floating_point() else "int64"}
             for name, t in inputs.items()}
    weights = [p.name for p in args.out.iterdir() if p.name not in ("unet.onnx", "unet.json")]
    (args.out / "unet.json").write_text(json.dumps({"inputs": feeds, "output": "noise", "tiny": args.tiny,
                                                    "externalData": weights}))
    sizes = ", ".join(f"{p.name} {p.stat().st_size / 2**20:.0f} MiB" for p in sorted(args.out.iterdir()))
    print(f"wrote {sizes}")


if __name__ == "__main__":
    main()
