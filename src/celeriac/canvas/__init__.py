"""Canvas: signatures and the workflows built from them (chain, group, chord, map, chunks)."""

from .primitives import chain, chord, chunks, group, xmap, xstarmap
from .signature import Signature, maybe_signature, signature
from .stamping import StampingVisitor

__all__ = ["Signature", "StampingVisitor", "chain", "chord", "chunks", "group", "maybe_signature", "signature",
           "xmap", "xstarmap"]
