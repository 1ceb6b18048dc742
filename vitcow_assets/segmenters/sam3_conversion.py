"""Meta's SAM3 release state dict (``detector.*``, ``tracker.*``) as transformers'
``Sam3VideoModel`` state dict (``detector_model.*``, ``tracker_model.*``, ``tracker_neck.*``),
tensor by tensor, following ``core.sam3_key_map`` (where each name goes and how its shape
changes); and CLIP's tokenizer vocabulary made from the BPE file open_clip ships.

Nothing is copied that need not be: renamed tensors are the same tensors, splits are views.
torch is imported only by the functions that need it.
"""

import gzip

from vitcow_assets.core.sam3_key_map import Op, dropped_reason, transformers_names

#: what a CLIP vocabulary holds besides the 256 byte symbols, their end-of-word forms and the merges
CLIP_SPECIAL_TOKENS = ("<|startoftext|>", "<|endoftext|>")
#: merges used by CLIP (the BPE file holds more): 49152 - 256 - 2, as open_clip and OpenAI's CLIP read it
CLIP_MERGES = 49152 - 256 - 2


class ConversionError(ValueError):
    """A state dict that is not SAM3's release layout; the message is one line."""


def release_to_transformers(state: dict) -> tuple[dict, list[str]]:
    """``(transformers state dict, names dropped)``: every release tensor placed where
    transformers keeps it (``ConversionError`` naming the first few that have no place)."""
    import torch

    out: dict = {}
    rows: dict[str, dict[int, object]] = {}
    dropped, unknown = [], []
    for name, tensor in state.items():
        if dropped_reason(name):
            dropped.append(name)
            continue
        try:
            mapped = transformers_names(name)
        except KeyError:
            unknown.append(name)
            continue
        if mapped.op is Op.SPLIT_QKV:
            for part, piece in zip("qkv", torch.chunk(tensor, 3, dim=0)):
                out[mapped.targets[0].format(part)] = piece
        elif mapped.op is Op.STACK_ROWS:
            rows.setdefault(mapped.targets[0], {})[mapped.index] = tensor
        else:
            value = {Op.TRANSPOSE: lambda t: t.t(), Op.DROP_CLS: lambda t: t[:, 1:, :]}.get(mapped.op, lambda t: t)(tensor)
            for target in mapped.targets:
                out[target] = value
    if unknown:
        more = f" (+{len(unknown) - 3} more)" if len(unknown) > 3 else ""
        raise ConversionError(f"tensors that are not SAM3's release layout: {', '.join(sorted(unknown)[:3])}{more}")
    for target, by_index in rows.items():
        out[target] = torch.cat([by_index[i] for i in sorted(by_index)], dim=0)
    return out, dropped


def _byte_symbols() -> list[str]:
    """The 256 printable symbols byte-level BPE writes bytes as (GPT-2's and CLIP's table:
    printable Latin-1 bytes stand for themselves, the others for code points from 256 up),
    in the table's order: the printable bytes first, then the others."""
    kept = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    others = [b for b in range(256) if b not in kept]
    return [chr(b) for b in kept] + [chr(256 + i) for i in range(len(others))]


def clip_vocabulary(bpe_path: str) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """``(vocab, merges)`` of CLIP's tokenizer from its gzipped BPE merges file (the one
    open_clip ships): byte symbols, the same with ``</w>``, one token per merge, then the
    start and end tokens; 49,408 tokens."""
    with gzip.open(bpe_path, "rt", encoding="utf-8") as handle:
        lines = handle.read().split("\n")
    merges = [tuple(line.split()) for line in lines[1 : CLIP_MERGES + 1]]
    symbols = _byte_symbols()
    tokens = symbols + [s + "</w>" for s in symbols] + ["".join(m) for m in merges] + list(CLIP_SPECIAL_TOKENS)
    return {token: i for i, token in enumerate(tokens)}, merges
