#!/usr/bin/env python3
"""Export a torchvision classification backbone to ONNX with intermediate layers as named outputs.

Writes, into the output folder:
  NAME.onnx  the graph: input "input" [N,3,H,W] float32 (dynamic batch N), one output per requested layer,
             each named by its alias (dynamic batch on every output), except pooled [N,C,1,1] outputs that the
             manifest marks "flatten": true: those keep the torchvision node name (avgpool) as ONNX tensor name,
             since FeatureOnnx's Flatten node produces the alias (manifest: name "pooled", tensor "avgpool"). Built with
             torchvision.models.feature_extraction.create_feature_extractor, which replaces forward hooks.
  NAME.json  the FeatureOnnx model manifest (featureonnx extract --model DIR/NAME.json); its preprocessing is read
             from the torchvision weights enum's own transforms (resize, crop, interpolation, mean, std).
  NAME.pth   the exact state_dict that was exported (after any BatchNorm recalibration), so that
             reference.py --weights DIR/NAME.pth reproduces the same model. Skip with --no-save-weights.

Examples:
  export.py --model resnet18 --weights random:0 -o /tmp/models
  export.py --model vgg16 --weights DEFAULT -o models            # needs internet (torch hub download)
  export.py --model efficientnet_b0 --weights ~/effnet_b0.pth -o models
  export.py --model resnet50 --layers layer3,avgpool=pooled -o models
  export.py --model resnet18 --list-layers

Weights:
  DEFAULT or an enum member name (IMAGENET1K_V1, ...): torchvision's pretrained weights (downloaded by torch hub).
  PATH.pth: a state_dict (or a checkpoint with 'state_dict'/'model' holding one) for the same architecture.
  random:SEED: torch.manual_seed(SEED), then the model is built with weights=None. Features are meaningless;
    for tests. Random BatchNorm models have tiny activations (efficientnet_b0's pooled vector is ~1e-14), so their
    BatchNorm statistics are re-estimated by default (--recalibrate-bn, below).

--recalibrate-bn N: reset every BatchNorm's running statistics, put only the BatchNorm layers in train mode with
  momentum=None (a plain cumulative average), run N batches of --calibration-batch inputs, then return to eval mode.
  Inputs: --calibration-images DIR (preprocessed exactly like inference, cycled in sorted order) or, without it,
  seeded image-like noise (smooth_noise below; torch.Generator seeded with SEED of random:SEED, else 0) of the crop
  size. Default: 8 batches for random weights of models with BatchNorm, 0 (off) otherwise. Activations then are
  O(1) instead of vanishing. Calibrating on the very images you test gives the best-conditioned network: white noise
  leaves efficientnet_b0 with activations up to 1e4 on photos, where float32 rounding differences grow to 1e-3.

--fp16: retired. float16 is a run-time choice of FeatureOnnx, with one set of rules for every model (float32 islands
  for reductions, exponentials and normalisations, as PyTorch's autocast keeps them): `featureonnx extract/bench
  --precision fp16`, or `featureonnx convert NAME.json --precision fp16 -o NAME_fp16.json` to write it once. The old
  all-float16 rewrite lost accuracy on efficientnet_b0 (issue 16). The manifest records "precision": "fp32".
"""
from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import time
import warnings

import torch
import torch.nn as nn
import torchvision
from torchvision import models
from torchvision.models.feature_extraction import create_feature_extractor, get_graph_node_names

# name -> [(torchvision node, alias, description)]. The first vector-like output is the manifest's default.
DEFAULT_LAYERS = {
    "resnet18": [
        ("avgpool", "pooled", "Global average pool of layer4 (the output of Sequential(*children()[:-1])): the 512-d embedding."),
        ("layer1", "layer1", "Output of the first residual stage (stride 4)."),
        ("layer2", "layer2", "Output of the second residual stage (stride 8)."),
        ("layer3", "layer3", "Output of the third residual stage (stride 16)."),
        ("layer4", "layer4", "Output of the fourth residual stage (stride 32), before pooling."),
    ],
    "vgg16": [
        ("classifier.4", "fc7", "fc7: the second 4096-d fully connected layer after its ReLU (classifier[4]; in eval mode "
                                "classifier[5], the dropout, returns the same values)."),
        ("features.16", "features16", "features[16], the third max pool (stride 8): the forward-hook example of the recipe."),
        ("features", "features", "Output of the convolutional part, features[30], the last max pool (stride 32)."),
    ],
    "efficientnet_b0": [
        ("avgpool", "pooled", "Global average pool of features: the 1280-d embedding."),
        ("features", "features", "Output of the convolutional part (features[8], 1x1 conv to 1280 channels + BN + SiLU, stride 32)."),
        ("features.2", "stage2", "features[2], MBConv stage 2 (24 channels, stride 4)."),
        ("features.4", "stage4", "features[4], MBConv stage 4 (80 channels, stride 16)."),
        ("features.6", "stage6", "features[6], MBConv stage 6 (192 channels, stride 32)."),
    ],
}

TORCHVISION_LICENSE_URL = "https://github.com/pytorch/vision/blob/main/LICENSE"
FORBIDDEN_IN_NAMES = set("/\\,=")


def fail(msg: str) -> "NoReturn":  # noqa: F821
    print(f"export.py: error: {msg}", file=sys.stderr)
    sys.exit(2)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def parse_layers(spec: str) -> list[tuple[str, str, str | None]]:
    """'node1,node2=alias' -> [(node1, node1, None), (node2, alias, None)]."""
    out = []
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        node, _, alias = part.partition("=")
        node, alias = node.strip(), (alias.strip() or node.strip())
        out.append((node, alias, None))
    if not out:
        fail("--layers is empty")
    return out


def weights_enum_for(name: str):
    try:
        return models.get_model_weights(name)
    except (ValueError, KeyError) as e:
        fail(f"torchvision has no weights enum for '{name}' ({e}); preprocessing cannot be read from it")


def transforms_source(enum, weights_arg: str, transforms_from: str | None):
    """The weights enum member whose transforms() define preprocessing."""
    key = transforms_from or (weights_arg if weights_arg in enum.__members__ or weights_arg == "DEFAULT" else "DEFAULT")
    if key == "DEFAULT":
        return enum.DEFAULT
    if key not in enum.__members__:
        fail(f"{enum.__name__} has no member '{key}'; members: DEFAULT, {', '.join(enum.__members__)}")
    return enum[key]


def has_batchnorm(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


def build_model(name: str, weights_arg: str, enum):
    """Returns (model, description of the weights, seed or None)."""
    if weights_arg.startswith("random:"):
        try:
            seed = int(weights_arg.split(":", 1)[1])
        except ValueError:
            fail(f"--weights {weights_arg}: SEED must be an integer")
        torch.manual_seed(seed)
        return models.get_model(name, weights=None), weights_arg, seed
    if weights_arg == "DEFAULT" or weights_arg in enum.__members__:
        member = enum.DEFAULT if weights_arg == "DEFAULT" else enum[weights_arg]
        try:
            model = models.get_model(name, weights=member)
        except Exception as e:  # no network, proxy, hash mismatch...
            fail(f"could not load {member} ({type(e).__name__}: {e}). Without internet, download {member.url} "
                 f"elsewhere and pass --weights PATH.pth")
        return model, f"{member} ({member.url})", None
    if not os.path.isfile(weights_arg):
        fail(f"--weights {weights_arg}: not DEFAULT, an {enum.__name__} member, random:SEED or an existing file")
    model = models.get_model(name, weights=None)
    state = torch.load(weights_arg, map_location="cpu")
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and key in state and isinstance(state[key], dict):
            state = state[key]
    if not isinstance(state, dict):
        fail(f"{weights_arg} holds a {type(state).__name__}, not a state_dict")
    state = {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}
    model.load_state_dict(state, strict=True)
    return model, f"local file {os.path.basename(weights_arg)}", None


def preprocess_pil(path: str, tf) -> torch.Tensor:
    """The eval recipe on one file (as reference.py): exif_transpose, RGB, the weights' transforms."""
    from PIL import Image, ImageOps
    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im).convert("RGB")
        return tf(im)


IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".bmp", ".dib", ".gif", ".tif", ".tiff", ".webp", ".tga",
                    ".pbm", ".pgm", ".ppm", ".pnm"}


def smooth_noise(n: int, h: int, w: int, mean, std, gen: torch.Generator) -> torch.Tensor:
    """Seeded image-like noise, already normalised: a sum of bilinearly upsampled N(0,1) grids (sides 4, 8, 16, ...
    below min(h, w), then full resolution) weighted sqrt(min(h, w) / side), standardised per image and channel, given
    a random contrast (x0.5..1.5) and brightness (+N(0, 0.5)), clamped to the range a real image can reach after
    Normalize(mean, std). BatchNorm statistics estimated on it suit photos far better than white noise."""
    import torch.nn.functional as F
    side, scales = 4, []
    while side < min(h, w):
        scales.append(side)
        side *= 2
    x = torch.zeros(n, 3, h, w)
    for s in scales:
        grid = torch.randn(n, 3, s, s, generator=gen)
        x += F.interpolate(grid, size=(h, w), mode="bilinear", align_corners=False) * math.sqrt(min(h, w) / s)
    x += torch.randn(n, 3, h, w, generator=gen)
    x = (x - x.mean(dim=(2, 3), keepdim=True)) / x.std(dim=(2, 3), keepdim=True)
    x = x * (0.5 + torch.rand(n, 1, 1, 1, generator=gen)) + 0.5 * torch.randn(n, 1, 1, 1, generator=gen)
    mean_t, std_t = torch.tensor(mean).view(1, 3, 1, 1), torch.tensor(std).view(1, 3, 1, 1)
    return torch.max(torch.min(x, (1 - mean_t) / std_t), -mean_t / std_t)


def recalibrate_bn(model: nn.Module, batches: int, batch_size: int, size: tuple[int, int], seed: int,
                   images: list[str] | None, tf) -> str:
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    model.eval()
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average over all calibration batches
        m.train()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        if images:
            tensors = []
            for p in images:
                try:
                    tensors.append(preprocess_pil(p, tf))
                except Exception as e:
                    log(f"  calibration: skipping {p}: {e}")
            if not tensors:
                fail("--calibration-images: no usable image")
            data = torch.stack(tensors)
            for b in range(batches):
                idx = [(b * batch_size + i) % len(data) for i in range(batch_size)]
                model(data[idx])
            what = f"{batches} batches of {batch_size} from {len(data)} calibration images"
        else:
            for _ in range(batches):
                model(smooth_noise(batch_size, size[0], size[1], list(tf.mean), list(tf.std), gen))
            what = f"{batches} batches of {batch_size} seeded image-like noise inputs (torch.Generator seed {seed})"
    for m in bns:
        m.momentum = 0.1
    model.eval()
    return what


def disable_inplace(model: nn.Module) -> None:
    """In-place activations let a later ReLU overwrite an earlier layer's returned tensor in eager PyTorch (vgg16's
    classifier[3] would read as post-ReLU); ONNX is functional. Turning inplace off makes both agree."""
    for m in model.modules():
        if hasattr(m, "inplace") and isinstance(getattr(m, "inplace"), bool):
            m.inplace = False


class Extractor(nn.Module):
    def __init__(self, fx: nn.Module, aliases: list[str]):
        super().__init__()
        self.fx = fx
        self.aliases = aliases

    def forward(self, x):
        out = self.fx(x)
        return tuple(out[a] for a in self.aliases)


def check_onnx(path: str, aliases: list[str], shapes: dict[str, list[int]], input_shape: list[int]) -> None:
    """onnx.checker + strict shape inference; the graph outputs must be `aliases` (the ONNX output names, in order)
    with the expected shapes (batch axis symbolic)."""
    import onnx
    onnx.checker.check_model(path, full_check=False)
    m = onnx.load(path)
    inferred = onnx.shape_inference.infer_shapes(m, strict_mode=True, data_prop=True)
    outs = {o.name: o for o in inferred.graph.output}
    names = [o.name for o in inferred.graph.output]
    if names != aliases:
        fail(f"ONNX outputs {names} != requested {aliases}")

    def dims(vi):
        return [d.dim_param if d.dim_param else d.dim_value for d in vi.type.tensor_type.shape.dim]

    ind = dims(inferred.graph.input[0])
    if not isinstance(ind[0], str) or ind[1:] != input_shape:
        fail(f"ONNX input shape {ind}, expected [batch, {input_shape}]")
    for a in aliases:
        d = dims(outs[a])
        if outs[a].type.tensor_type.elem_type != onnx.TensorProto.FLOAT:
            fail(f"ONNX output {a} is not float32")
        if not d or not isinstance(d[0], str) or d[1:] != shapes[a]:
            fail(f"ONNX output {a} has shape {d}; expected [batch, {shapes[a]}] (unknown dims mean shape inference failed)")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 epilog="See the module docstring (head -50 export.py) for weights, BatchNorm recalibration and fp16.",
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="torchvision classification model name: resnet18, vgg16, efficientnet_b0, resnet50, ...")
    ap.add_argument("--layers", help="comma-separated torchvision node names, each optionally NODE=ALIAS (see --list-layers); "
                                     "a module name (layer1, features) means that module's last node. Default: per model (resnet18, vgg16, efficientnet_b0); else avgpool=pooled")
    ap.add_argument("--weights", default="DEFAULT", help="DEFAULT | weights enum member (IMAGENET1K_V1) | PATH.pth | random:SEED (default DEFAULT)")
    ap.add_argument("--transforms-from", help="weights enum member whose transforms() give the preprocessing (default: the --weights member, else DEFAULT)")
    ap.add_argument("--recalibrate-bn", type=int, default=None, metavar="N",
                    help="re-estimate BatchNorm statistics on N batches (default: 8 for random weights of BatchNorm models, else 0)")
    ap.add_argument("--calibration-images", metavar="DIR", help="images (folder, recursive) for --recalibrate-bn instead of seeded noise")
    ap.add_argument("--calibration-batch", type=int, default=8, help="inputs per calibration batch (default 8)")
    ap.add_argument("--fp16", action="store_true", help="retired: use featureonnx convert NAME.json --precision fp16 (or extract --precision fp16)")
    ap.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    ap.add_argument("--name", help="base name of the written files and the manifest's name (default: MODEL)")
    ap.add_argument("--no-save-weights", action="store_true", help="do not write NAME.pth (the exported state_dict)")
    ap.add_argument("--no-check", action="store_true", help="skip onnx.checker and shape inference of the written file")
    ap.add_argument("--list-layers", action="store_true", help="print the node names (eval mode) usable in --layers, and exit")
    ap.add_argument("-o", "--output", help="output folder (created)")
    args = ap.parse_args(argv)

    if args.fp16:
        fail("--fp16 is retired: export in float32, then `featureonnx convert DIR/NAME.json --precision fp16 -o DIR/NAME_fp16.json` "
             "(or `featureonnx extract/bench --precision fp16`): the same float16 rules for every model, float32 reductions included")
    warnings.filterwarnings("ignore", category=UserWarning)
    name = args.model
    if name not in models.list_models(module=models):
        fail(f"'{name}' is not a torchvision classification model; try one of: {', '.join(models.list_models(module=models))}")

    if args.list_layers:
        model = models.get_model(name, weights=None).eval()
        _, eval_nodes = get_graph_node_names(model)
        print("\n".join(eval_nodes))
        print(f"# {len(eval_nodes)} nodes (eval mode). A parent module name (e.g. layer1, features) also works and means "
              f"its last node.", file=sys.stderr)
        return 0
    if not args.output:
        fail("-o/--output is required")

    t0 = time.time()
    enum = weights_enum_for(name)
    tsrc = transforms_source(enum, args.weights, args.transforms_from)
    tf = tsrc.transforms()
    resize, crop = list(tf.resize_size), list(tf.crop_size)
    if len(resize) != 1:
        fail(f"{tsrc} resizes to {resize}; the manifest can only express a shorter-side resize")
    crop_hw = [crop[0], crop[0]] if len(crop) == 1 else crop[:2]
    interp = tf.interpolation.value
    if interp not in {"nearest", "bilinear", "bicubic", "box", "hamming", "lanczos"}:
        fail(f"{tsrc} uses interpolation '{interp}', which FeatureOnnx does not implement")

    layers = parse_layers(args.layers) if args.layers else DEFAULT_LAYERS.get(name, [("avgpool", "pooled", None)])
    aliases = [a for _, a, _ in layers]
    for a in aliases:
        if not a or set(a) & FORBIDDEN_IN_NAMES:
            fail(f"output name '{a}' is empty or holds one of / \\ , = (names become file names); give NODE=alias")
    if len(set(aliases)) != len(aliases):
        fail(f"duplicate output names in {aliases}")
    if len({n for n, _, _ in layers}) != len(layers):
        fail("the same node is requested twice")

    model, weights_desc, seed = build_model(name, args.weights, enum)
    model.eval()
    random_weights = seed is not None
    n_cal = args.recalibrate_bn if args.recalibrate_bn is not None else (8 if random_weights and has_batchnorm(model) else 0)
    cal_desc = None
    if n_cal > 0:
        if not has_batchnorm(model):
            log(f"--recalibrate-bn: {name} has no BatchNorm layer; nothing to do")
        else:
            imgs = None
            if args.calibration_images:
                imgs = sorted(os.path.join(r, f) for r, _, fs in os.walk(args.calibration_images, followlinks=True) for f in fs
                              if os.path.splitext(f)[1].lower() in IMAGE_EXTENSIONS)
            tc = time.time()
            cal_desc = recalibrate_bn(model, n_cal, args.calibration_batch, tuple(crop_hw), seed if seed is not None else 0, imgs, tf)
            log(f"recalibrated BatchNorm statistics: {cal_desc} ({time.time() - tc:.1f}s)")
    disable_inplace(model)

    fx = create_feature_extractor(model, return_nodes={n: a for n, a, _ in layers})
    wrapper = Extractor(fx, aliases).eval()
    dummy = torch.randn(2, 3, crop_hw[0], crop_hw[1], generator=torch.Generator().manual_seed(1234))
    with torch.no_grad():
        outs = wrapper(dummy)
    shapes, flatten = {}, {}
    for a, o in zip(aliases, outs):
        rest = list(o.shape[1:])
        flat = len(rest) > 1 and all(d == 1 for d in rest[1:])
        flatten[a] = flat
        shapes[a] = [rest[0]] if flat else rest

    # ONNX output names: the alias, except for outputs FeatureOnnx flattens: their unflattened tensor gets another name
    # (the torchvision node name, e.g. avgpool) because FeatureOnnx's Flatten node writes the alias itself.
    nodes = {a: n for n, a, _ in layers}
    tensors = {}
    for a in aliases:
        t = a
        if flatten[a]:
            t = nodes[a] if nodes[a] not in aliases and not set(nodes[a]) & FORBIDDEN_IN_NAMES else a + "_unflattened"
        tensors[a] = t
    out_name = args.name or name
    os.makedirs(args.output, exist_ok=True)
    onnx_path = os.path.join(args.output, out_name + ".onnx")
    te = time.time()
    with torch.no_grad():
        torch.onnx.export(wrapper, (dummy,), onnx_path, input_names=["input"], output_names=[tensors[a] for a in aliases],
                          dynamic_axes={"input": {0: "batch"}, **{tensors[a]: {0: "batch"} for a in aliases}},
                          opset_version=args.opset, do_constant_folding=True)
    t_export = time.time() - te
    if not args.no_check:
        check_onnx(onnx_path, [tensors[a] for a in aliases],
                   {tensors[a]: ([shapes[a][0], 1, 1] if flatten[a] else shapes[a]) for a in aliases}, [3] + crop_hw)

    if not args.no_save_weights:
        torch.save(model.state_dict(), os.path.join(args.output, out_name + ".pth"))

    descs = {a: d for _, a, d in layers}
    vector_like = [a for a in aliases if len(shapes[a]) == 1]
    if random_weights:
        origin = (f"torchvision {torchvision.__version__} {name}, weights: {weights_desc} (torch.manual_seed({seed}) then "
                  f"weights=None; features are meaningless, for parity tests)")
    else:
        origin = f"torchvision {torchvision.__version__} {name}, weights: {weights_desc}"
    notes = [f"Exported by export-scripts/export.py with torch {torch.__version__}, opset {args.opset}, "
             f"create_feature_extractor nodes: " + ", ".join(f"{nodes[a]} -> {a}" for a in aliases) + "."]
    notes.append(f"Preprocessing from {tsrc}.transforms().")
    if cal_desc:
        notes.append(f"BatchNorm running statistics re-estimated (momentum=None) on {cal_desc}; the exact weights are in {out_name}.pth.")
    if not random_weights:
        notes.append("Pretrained torchvision weights are trained on ImageNet-1k; their use may be subject to the ImageNet terms.")
    manifest = {
        "name": out_name,
        "description": (f"torchvision {name}, weights {args.weights}. Input: RGB, "
                        f"ImageNet-normalised. Outputs: " + ", ".join(f"{a} {shapes[a]}" for a in aliases) + "."),
        "source": {"file": out_name + ".onnx", "dynamicBatch": True},
        "precision": "fp32",
        "input": {"name": "input", "layout": "nchw", "elementType": "float32", "shape": [3] + crop_hw},
        "preprocess": {
            "resizeShorter": resize[0],
            "interpolation": interp,
            "centerCrop": crop_hw,
            "pixelDivisor": 255,
            "mean": list(tf.mean),
            "std": list(tf.std),
            "channelOrder": "rgb",
            "applyExifOrientation": True,
        },
        "outputs": [
            {"name": a, "tensor": tensors[a], **({"flatten": True} if flatten[a] else {}), "shape": shapes[a],
             "description": descs[a] or f"Output of torchvision node '{nodes[a]}'."}
            for a in aliases
        ],
        "defaultOutputs": [vector_like[0] if vector_like else aliases[0]],
        "provenance": {"origin": origin, "license": "BSD-3-Clause", "licenseUrl": TORCHVISION_LICENSE_URL,
                       "notes": " ".join(notes)},
    }
    text = json.dumps(manifest, indent=2)
    # keep short number lists on one line: "shape": [3, 224, 224]
    text = re.sub(r"\[\s*([-0-9.e,\s]+?)\s*\]", lambda mo: "[" + ", ".join(mo.group(1).split()).replace(",,", ",") + "]", text)
    with open(os.path.join(args.output, out_name + ".json"), "w") as f:
        f.write(text + "\n")
    size = os.path.getsize(onnx_path)
    log(f"wrote {onnx_path} ({size / 1e6:.1f} MB) and {out_name}.json"
        f"{'' if args.no_save_weights else f', {out_name}.pth'}; outputs: "
        + ", ".join(f"{a}{shapes[a]}{' (flatten)' if flatten[a] else ''}" for a in aliases)
        + f"; torch.onnx.export {t_export:.1f}s, total {time.time() - t0:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
