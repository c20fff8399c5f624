"""PyTorch + diffusers on CUDA: the native peer of the in-browser benchmark, same random SD 1.5 at 512x512.

    python3 bench/torch_reference.py --out results.json [--compile] [--steps 20] [--runs fp16-compiled,...]

Times (CUDA events, median of repeats, after warm-up): CLIP text encoder, UNet batch 2 (CFG), VAE decode, and the
whole pipeline (DPM++ 2M with CFG for --steps, and 4-step LCM-style without CFG) in fp32 (TF32 off) and fp16,
eager and (with --compile) torch.compile'd UNet/VAE. Runs on the GPU machine; needs torch, diffusers, transformers.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "py"))

SD15_UNET = dict(sample_size=64, in_channels=4, out_channels=4, layers_per_block=2,
                 block_out_channels=(320, 640, 1280, 1280), cross_attention_dim=768, attention_head_dim=8,
                 down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
                 up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3)
SD15_VAE = dict(in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2, sample_size=512,
                block_out_channels=(128, 256, 512, 512), down_block_types=("DownEncoderBlock2D",) * 4,
                up_block_types=("UpDecoderBlock2D",) * 4)
SD15_CLIP = dict(vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                 num_attention_heads=12, max_position_embeddings=77, hidden_act="quick_gelu", projection_dim=768)


def cuda_ms(fn, warmup: int = 3, reps: int = 10) -> float:
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def build(dtype):
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(0)
    unet = UNet2DConditionModel(**SD15_UNET).to("cuda", dtype).eval()
    vae = AutoencoderKL(**SD15_VAE).to("cuda", dtype).eval()
    text = CLIPTextModel(CLIPTextConfig(**SD15_CLIP)).to("cuda", dtype).eval()
    return unet, vae, text


def pipeline(unet, vae, text, scheduler_cls, **scheduler_kwargs):
    from diffusers import StableDiffusionPipeline
    from transformers import CLIPTokenizer

    from doppler.convert.clip_vocab import write_clip_tokenizer_files

    folder = Path(tempfile.mkdtemp())
    write_clip_tokenizer_files(folder)
    tokenizer = CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), pad_token="<|endoftext|>",
                              model_max_length=77)
    scheduler = scheduler_cls(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                              num_train_timesteps=1000, steps_offset=1, **scheduler_kwargs)
    return StableDiffusionPipeline(vae=vae, text_encoder=text, tokenizer=tokenizer, unet=unet, scheduler=scheduler,
                                   safety_checker=None, feature_extractor=None, requires_safety_checker=False)


@torch.inference_mode()
def measure(dtype, compiled: bool, steps: int) -> dict:
    from diffusers import DPMSolverMultistepScheduler, LCMScheduler

    unet, vae, text = build(dtype)
    if compiled:
        unet = torch.compile(unet)
        vae.decode = torch.compile(vae.decode)
    latents = torch.randn(2, 4, 64, 64, device="cuda", dtype=dtype)
    ctx = torch.randn(2, 77, 768, device="cuda", dtype=dtype)
    t = torch.tensor([500, 500], device="cuda")
    ids = torch.randint(0, 49408, (2, 77), device="cuda")
    row = {
        "textEncoderMs": cuda_ms(lambda: text(ids)),
        "unetBatch2Ms": cuda_ms(lambda: unet(latents, t, encoder_hidden_states=ctx)),
        "vaeDecodeMs": cuda_ms(lambda: vae.decode(latents[:1] / 0.18215)),
    }
    pipe = pipeline(unet, vae, text, DPMSolverMultistepScheduler, use_karras_sigmas=True)
    run = lambda: pipe("a photo of an astronaut", num_inference_steps=steps, guidance_scale=7.5,  # noqa: E731
                       height=512, width=512, output_type="np", generator=torch.Generator("cuda").manual_seed(0))
    row[f"pipeline{steps}StepCfgMs"] = cuda_ms(run, warmup=1, reps=3)
    lcm = pipeline(unet, vae, text, LCMScheduler)
    run = lambda: lcm("a photo of an astronaut", num_inference_steps=4, guidance_scale=1.0,  # noqa: E731
                      height=512, width=512, output_type="np", generator=torch.Generator("cuda").manual_seed(0))
    row["pipelineLcm4StepMs"] = cuda_ms(run, warmup=1, reps=3)
    return {k: round(v, 2) for k, v in row.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="torch_reference.json")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--runs", default="", help="only these of fp32-eager, fp32-compiled, fp16-eager, "
                        "fp16-compiled (comma-separated; compiling takes minutes each)")
    args = parser.parse_args()
    wanted = set(filter(None, args.runs.split(",")))
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    results = {"device": torch.cuda.get_device_name(), "torch": torch.__version__}
    for name, dtype in (("fp32", torch.float32), ("fp16", torch.float16)):
        for compiled in (False, True) if args.compile or args.runs else (False,):
            key = f"{name}-{'compiled' if compiled else 'eager'}"
            if wanted and key not in wanted:
                continue
            results[key] = measure(dtype, compiled, args.steps)
            print(key, results[key], flush=True)
            Path(args.out).write_text(json.dumps(results, indent=1))  # after each: a run cut short keeps the rest


if __name__ == "__main__":
    main()
