"""GPU check for the hf backend: a randomly initialised 7B-class LLaVA, 4-bit on CUDA.

Builds a LLaVA-1.5-7B-shaped checkpoint (Llama-2-7B text config, CLIP ViT-L/14-336 tower, 576
image tokens) with random bf16 weights directly on the GPU, saves it as safetensors, loads it back
through `HFDetector(quantize="4bit")` (bitsandbytes NF4 + double quantisation, bf16 compute) and
prints:
  - detection throughput (images/s) at batch 1 and batch 16,
  - the cost of detection + 14 attributes relative to detection alone (same batch, same images),
  - peak GPU memory.
Random weights make the outputs meaningless; the timings are what a real 7B checkpoint costs.

    PYTHONPATH=. python bench/gpu_check.py            # on a CUDA machine
    PYTHONPATH=. python bench/gpu_check.py --small    # tiny config on the CPU, to test the script
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # tiny_models: the locally trained tokenizer and chat template

T0 = time.perf_counter()


def log(msg: str) -> None:
    print(f"[{time.perf_counter() - T0:7.1f}s] {msg}", flush=True)


def build_checkpoint(out: Path, small: bool, device: str) -> None:
    import torch
    from tiny_models import LLAVA_SPECIALS, LLAVA_TEMPLATE, build_tokenizer_object
    from transformers import (
        CLIPImageProcessorPil,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
        PreTrainedTokenizerFast,
    )

    tok = PreTrainedTokenizerFast(
        tokenizer_object=build_tokenizer_object(LLAVA_SPECIALS), unk_token="<unk>", bos_token="<s>",
        eos_token="</s>", pad_token="<pad>", extra_special_tokens={"image_token": "<image>"},
    )
    if small:
        text = LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                           num_key_value_heads=4, vocab_size=512, max_position_embeddings=4096)
        vision = CLIPVisionConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                                  image_size=336, patch_size=14, projection_dim=64)
    else:  # Llama-2-7B and CLIP ViT-L/14-336, as in llava-1.5-7b
        text = LlamaConfig(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
                           num_key_value_heads=32, vocab_size=32064, max_position_embeddings=4096, rms_norm_eps=1e-5)
        vision = CLIPVisionConfig(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24,
                                  num_attention_heads=16, image_size=336, patch_size=14, projection_dim=768)
    text.pad_token_id = tok.pad_token_id
    cfg = LlavaConfig(vision_config=vision, text_config=text, image_token_id=tok.convert_tokens_to_ids("<image>"),
                      projector_hidden_act="gelu", vision_feature_select_strategy="default",
                      vision_feature_layer=-2, image_seq_length=576, tie_word_embeddings=False)
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    torch.manual_seed(0)
    prev = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    with torch.device(device):  # random init where it runs fastest; 7B at fp32 on a CPU would take minutes
        model = LlavaForConditionalGeneration(cfg)
    torch.set_default_dtype(prev)
    n = sum(p.numel() for p in model.parameters())
    log(f"random model built: {n / 1e9:.2f} B parameters ({dtype})")
    model.save_pretrained(out, safe_serialization=True, max_shard_size="4GB")
    del model
    if device == "cuda":
        torch.cuda.empty_cache()
    improc = CLIPImageProcessorPil(size={"shortest_edge": 336}, crop_size={"height": 336, "width": 336})
    LlavaProcessor(image_processor=improc, tokenizer=tok, patch_size=14, vision_feature_select_strategy="default",
                   num_additional_image_tokens=1, chat_template=LLAVA_TEMPLATE).save_pretrained(out)
    size = sum(f.stat().st_size for f in out.glob("*.safetensors"))
    log(f"checkpoint saved: {size / 2**30:.1f} GiB safetensors")


def make_images(out: Path, n: int) -> list[Path]:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        arr = rng.integers(0, 256, (384 + 8 * (i % 4), 512, 3), dtype=np.uint8)
        p = out / f"img{i:03d}.jpg"
        Image.fromarray(arr).save(p, quality=90)
        paths.append(p)
    return paths


def timed(fn, sync, keep: list | None = None) -> float:  # noqa: ANN001
    sync()
    t = time.perf_counter()
    out = fn()
    sync()
    if keep is not None:
        keep.append(out)
    return time.perf_counter() - t


def max_diff(a: list, b: list) -> float:
    return max(abs(x.p_fake - y.p_fake) for x, y in zip(a, b, strict=True))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--small", action="store_true", help="tiny config on the CPU (tests this script)")
    ap.add_argument("--quantize", default="4bit", choices=["4bit", "8bit", "none"])
    ap.add_argument("--images", type=int, default=48, help="images per timed batch-16 run")
    ap.add_argument("--budget", type=float, default=420.0, help="seconds; later stages are skipped past it")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()

    import logging

    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
    import torch
    import transformers

    device = "cpu" if args.small else "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        print("no CUDA device visible; use --small to test on the CPU", file=sys.stderr)
        return 2
    res: dict[str, object] = {
        "torch": torch.__version__, "transformers": transformers.__version__, "device": device,
        "quantize": args.quantize, "config": "tiny" if args.small else "llava-1.5-7b-shaped (random)",
    }
    try:
        import bitsandbytes

        res["bitsandbytes"] = bitsandbytes.__version__
    except ImportError:
        res["bitsandbytes"] = None
    if device == "cuda":
        res["gpu"] = torch.cuda.get_device_name(0)
    log(json.dumps(res))
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    from fakescope_cli.detectors.hf import HFDetector
    from fakescope_cli.media import Media

    with tempfile.TemporaryDirectory(prefix="fakescope-gpu-check-") as tmp:
        tmpd = Path(tmp)
        ckpt = tmpd / "llava-random"
        build_checkpoint(ckpt, args.small, device)
        t = time.perf_counter()
        det = HFDetector(ckpt, device=device, quantize=args.quantize, batch_size=16)
        res["load_s"] = round(time.perf_counter() - t, 1)
        if device == "cuda":
            res["weights_gib_on_gpu"] = round(torch.cuda.memory_allocated() / 2**30, 2)
            torch.cuda.reset_peak_memory_stats()
        log(f"detector loaded in {res['load_s']} s; label ids {det.labels.to_dict()}")
        n = max(16, args.images // 16 * 16)
        medias = [Media.open(p) for p in make_images(tmpd, n)]

        # Warm-up (CUDA kernels, bitsandbytes dequantisation paths) at both shapes.
        det.batch_size = 16
        det.analyze_batch(medias[:16])
        det.attributes = True
        det.analyze_batch(medias[:16])
        det.attributes = False
        det.batch_size = 1
        det.analyze_batch(medias[:2])
        log("warm-up done")

        det.batch_size = 1
        n1 = 16
        r1: list = []
        t1 = timed(lambda: det.analyze_batch(medias[:n1]), sync, r1)
        res["detect_batch1_images_per_s"] = round(n1 / t1, 2)
        log(f"detection, batch 1: {n1 / t1:.2f} images/s")

        det.batch_size = 16
        before = dict(det.stats)
        r16: list = []
        t16 = timed(lambda: det.analyze_batch(medias), sync, r16)
        res["max_abs_diff_p_fake_batch1_vs_batch16"] = round(max_diff(r1[0], r16[0][:n1]), 6)
        res["detect_batch16_images_per_s"] = round(n / t16, 2)
        res["detect_batch16_forward_passes"] = det.stats["forward_passes"] - before["forward_passes"]
        log(f"detection, batch 16: {n / t16:.2f} images/s over {n} images")

        if time.perf_counter() - T0 < args.budget:
            det.attributes = True
            before = dict(det.stats)
            ra: list = []
            ta = timed(lambda: det.analyze_batch(medias), sync, ra)
            res["max_abs_diff_p_fake_with_vs_without_attributes"] = round(max_diff(r16[0], ra[0]), 6)
            det.attributes = False
            res["attributes_batch16_images_per_s"] = round(n / ta, 2)
            res["attribute_cost_ratio_batch16"] = round(ta / t16, 3)
            res["attributes_vision_images"] = det.stats["vision_images"] - before["vision_images"]
            res["attributes_forward_passes"] = det.stats["forward_passes"] - before["forward_passes"]
            log(f"detection + 14 attributes, batch 16: {n / ta:.2f} images/s; cost ratio {ta / t16:.2f}x "
                f"(target <= 2.5x); vision images encoded {res['attributes_vision_images']} for {n} images")
        if time.perf_counter() - T0 < args.budget:
            det.batch_size = 1
            det.attributes = True
            ta1 = timed(lambda: det.analyze_batch(medias[:n1]), sync)
            det.attributes = False
            res["attribute_cost_ratio_batch1"] = round(ta1 / t1, 3)
            log(f"detection + 14 attributes, batch 1: cost ratio {ta1 / t1:.2f}x")
        if device == "cuda":
            res["peak_gpu_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
            log(f"peak GPU memory (after load): {res['peak_gpu_memory_gib']} GiB")
    res["total_s"] = round(time.perf_counter() - T0, 1)
    print("RESULT " + json.dumps(res), flush=True)
    if args.json:
        args.json.write_text(json.dumps(res, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
