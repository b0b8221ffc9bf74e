"""The `synth` room: a synthetic CLIF warehouse of any size, for benchmarks and demos at scale."""

from ._generate import BLOCK, DEFAULT_CHUNK, DEFAULT_SEED, MANIFEST, SynthResult, generate_warehouse

__all__ = ["generate_warehouse", "SynthResult", "BLOCK", "DEFAULT_CHUNK", "DEFAULT_SEED", "MANIFEST"]
